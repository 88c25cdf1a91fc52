//! HELP and HELPOP (the same): `704` opens a topic with its syntax, `705`
//! carries its lines, `706` ends it; an unknown topic is `524`. Without a
//! subject, the `index` topic lists every command. The texts are in
//! `help_texts`.

use super::help_texts::{self, TOPICS};
use crate::session::Ctx;
use parley_proto::numeric::*;
use parley_proto::MessageRef;

/// The subject HELP without one is about.
const INDEX: &str = "index";

pub fn help(ctx: &mut Ctx<'_>, msg: &MessageRef<'_>) {
    let subject = msg.param(0).filter(|s| !s.is_empty()).unwrap_or(INDEX);
    if subject.eq_ignore_ascii_case(INDEX) {
        ctx.reply(RPL_HELPSTART, &[INDEX, "Commands Parley understands; HELP <command> tells more:"]);
        let names: Vec<&str> = TOPICS.iter().map(|t| t.name).collect();
        for line in names.chunks(8) {
            ctx.reply(RPL_HELPTXT, &[INDEX, &line.join(" ")]);
        }
        ctx.reply(RPL_ENDOFHELP, &[INDEX, "End of /HELP"]);
        return;
    }
    let Some(topic) = help_texts::find(subject) else {
        ctx.reply(ERR_HELPNOTFOUND, &[subject, "No help available on this topic"]);
        return;
    };
    ctx.reply(RPL_HELPSTART, &[topic.name, topic.syntax]);
    for line in topic.text {
        ctx.reply(RPL_HELPTXT, &[topic.name, line]);
    }
    ctx.reply(RPL_ENDOFHELP, &[topic.name, "End of /HELP"]);
}

#[cfg(test)]
mod tests {
    use super::super::testing::{codes, Harness};
    use super::help_texts;

    #[test]
    fn help_opens_lines_and_ends_a_topic_any_case() {
        let (h, [mut alice]) = Harness::start(["alice"]);
        let out = h.run(&mut alice, "HELP privmsg");
        assert_eq!(codes(&out), ["704", "705", "705", "706"], "{out}");
        assert!(out.starts_with(":parley.local 704 alice PRIVMSG :PRIVMSG <target>"), "{out}");
        assert_eq!(h.run(&mut alice, "HELPOP PRIVMSG"), out, "HELPOP is HELP");
        let index = h.run(&mut alice, "HELP");
        assert!(index.contains(" 705 alice index :AUTHENTICATE AWAY "), "{index}");
        assert_eq!(codes(&index).last(), Some(&"706"));
    }

    #[test]
    fn an_unknown_topic_is_524_alone() {
        let (h, [mut alice]) = Harness::start(["alice"]);
        let out = h.run(&mut alice, "HELP NOSUCHTHING");
        assert_eq!(out, ":parley.local 524 alice NOSUCHTHING :No help available on this topic\r\n");
    }

    #[test]
    fn every_command_has_a_topic_and_every_topic_a_command() {
        let commands = super::super::command_names();
        for name in &commands {
            assert!(help_texts::find(name).is_some(), "HELP has no topic for {name}");
        }
        for topic in help_texts::TOPICS {
            assert!(commands.contains(&topic.name), "HELP has a topic for {}, which is no command", topic.name);
        }
        let names: Vec<&str> = help_texts::TOPICS.iter().map(|t| t.name).collect();
        assert!(names.windows(2).all(|w| w[0] < w[1]), "topics in alphabetical order");
    }
}
