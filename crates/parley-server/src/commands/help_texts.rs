//! What HELP says about each command: its syntax and a line or two. Kept
//! apart from the handler so the texts can grow without crowding it; a
//! test in `help` checks that every command in the dispatch table has one.

/// One help topic: the command, its syntax, and what it does.
pub struct Topic {
    pub name: &'static str,
    pub syntax: &'static str,
    pub text: &'static [&'static str],
}

const fn topic(name: &'static str, syntax: &'static str, text: &'static [&'static str]) -> Topic {
    Topic { name, syntax, text }
}

/// Every topic, in alphabetical order (the index lists them so).
pub const TOPICS: &[Topic] = &[
    topic(
        "AUTHENTICATE",
        "AUTHENTICATE <mechanism>|<data>",
        &["Logs in to an account with SASL (PLAIN, SCRAM-SHA-256, EXTERNAL)."],
    ),
    topic("AWAY", "AWAY [:<text>]", &["Marks you away with the text, or back without one."]),
    topic("CAP", "CAP LS [302] | LIST | REQ :<caps> | END", &["Negotiates IRCv3 capabilities."]),
    topic(
        "CHATHISTORY",
        "CHATHISTORY LATEST|BEFORE|AFTER|AROUND <target> <*|msgid=<id>|timestamp=<time>> <limit>",
        &[
            "Replays a channel's or a conversation's past messages (IRCv3 chathistory).",
            "Also BETWEEN <target> <ref> <ref> <limit> and TARGETS <time> <time> <limit>.",
        ],
    ),
    topic(
        "DIE",
        "DIE [CLUSTER] [:<reason>]",
        &["Operators only: closes the server for everyone.", "DIE CLUSTER closes every node of a cluster."],
    ),
    topic("EXTJWT", "EXTJWT *", &["Gives you a short-lived token for the file store."]),
    topic(
        "HELP",
        "HELP [<command>]",
        &["Shows help on a command, or the list of commands without one.", "HELPOP is the same."],
    ),
    topic("HELPOP", "HELPOP [<command>]", &["The same as HELP."]),
    topic(
        "HISTORY",
        "HISTORY DELETE | HISTORY PURGE <#channel>",
        &[
            "DELETE deletes every message your account sent from history and search.",
            "PURGE (operators) deletes a channel's whole history.",
        ],
    ),
    topic("INFO", "INFO", &["Tells what this server is."]),
    topic(
        "INVITE",
        "INVITE [<nick> <#channel>]",
        &[
            "Invites a user to a channel you are in (an operator's job under +i).",
            "Without parameters: the channels you are invited to.",
        ],
    ),
    topic("ISON", "ISON <nick> [<nick>...]", &["Tells which of the nicks are online."]),
    topic(
        "JOIN",
        "JOIN <#channel>[,<#channel>...] [<key>[,<key>...]] | JOIN 0",
        &["Joins channels, creating them (as their operator) if needed.", "JOIN 0 leaves every channel."],
    ),
    topic("KICK", "KICK <#channel> <nick> [:<reason>]", &["Channel operators: removes a user from the channel."]),
    topic("KILL", "KILL <nick> [:<reason>]", &["Operators only: disconnects a user."]),
    topic("LINKS", "LINKS [[<server>] <mask>]", &["Lists the servers of the network: this one."]),
    topic(
        "LIST",
        "LIST [<filter>[,<filter>...]]",
        &[
            "Lists channels. Filters: #name or mask, !mask (not matching),",
            "<n or >n members, C<n or C>n created, T<n or T>n topic set, minutes ago.",
        ],
    ),
    topic("LUSERS", "LUSERS", &["Counts users, operators and channels."]),
    topic(
        "MARKREAD",
        "MARKREAD <target> [timestamp=<time>]",
        &["Asks or moves forward where you have read up to; shared by your account's connections."],
    ),
    topic(
        "MODE",
        "MODE <#channel> [<modes> [<params>]] | MODE <nick> [<modes>]",
        &[
            "Channel modes: b e I (lists), i k l m n p s t, o v (members).",
            "Your own modes: i (invisible), w (wallops), B (bot); -o drops operator.",
        ],
    ),
    topic(
        "MONITOR",
        "MONITOR + <nicks> | - <nicks> | C | L | S",
        &[
            "Tells you when the nicks come online or go offline (730, 731).",
            "+ adds, - removes, C clears, L lists, S shows who is online.",
        ],
    ),
    topic("MOTD", "MOTD", &["Shows the message of the day."]),
    topic("NAMES", "NAMES <#channel>", &["Lists a channel's members."]),
    topic("NICK", "NICK <nick>", &["Sets or changes your nick."]),
    topic(
        "NICKSERV",
        "NICKSERV <command> [<params>]",
        &["Account commands for clients without SASL; NICKSERV HELP lists them.", "The same as /msg NickServ."],
    ),
    topic("NOTICE", "NOTICE <target>[,<target>...] :<text>", &["Like PRIVMSG, but never answered with an error."]),
    topic("NS", "NS <command> [<params>]", &["The same as NICKSERV."]),
    topic("OPER", "OPER <name> <password>", &["Makes you an IRC operator."]),
    topic("PART", "PART <#channel>[,<#channel>...] [:<reason>]", &["Leaves channels."]),
    topic("PASS", "PASS <password>", &["Gives the server password, before NICK and USER."]),
    topic("PING", "PING <token>", &["The server answers PONG with the token."]),
    topic("PONG", "PONG <token>", &["Answers the server's PING."]),
    topic(
        "PRIVMSG",
        "PRIVMSG <target>[,<target>...] :<text>",
        &[
            "Sends a message to channels or nicks.",
            "@#channel or +#channel: only to its operators, or its voiced members.",
        ],
    ),
    topic("QUIT", "QUIT [:<reason>]", &["Disconnects."]),
    topic(
        "REGISTER",
        "REGISTER <account> <email|*> <password>",
        &["Creates an account (IRCv3 account registration); the account * means your nick."],
    ),
    topic(
        "REHASH",
        "REHASH",
        &[
            "Operators only: reads the configuration file again and applies what can change",
            "without a restart; names the settings that need one. A bad file changes nothing.",
        ],
    ),
    topic(
        "SEARCH",
        "SEARCH text=<words>[;in=<target>][;from=<nick>][;after=<time>][;before=<time>][;limit=<n>]",
        &["Searches the history you may read for messages with all the words."],
    ),
    topic("SETNAME", "SETNAME :<realname>", &["Changes your realname; others with the setname capability see it."]),
    topic("TAGMSG", "TAGMSG <target>[,<target>...]", &["Sends only message tags (with message-tags)."]),
    topic("TIME", "TIME", &["Tells the server's time."]),
    topic("TOPIC", "TOPIC <#channel> [:<text>]", &["Shows or sets a channel's topic; an empty text clears it."]),
    topic("USER", "USER <username> 0 * :<realname>", &["Registers your username and realname."]),
    topic("USERHOST", "USERHOST <nick> [<nick>...]", &["Shows the user@host of up to five nicks."]),
    topic("VERIFY", "VERIFY <account> <code>", &["Confirms a new account with the code you were sent."]),
    topic("VERSION", "VERSION", &["Tells the server's version and what it supports."]),
    topic("WALLOPS", "WALLOPS :<text>", &["Operators only: a message to every user with mode +w."]),
    topic(
        "WHO",
        "WHO <#channel|nick|mask> [%<fields>[,<token>]]",
        &["Lists users. With %fields (WHOX, letters tcuihsnfdlaor): 354 replies."],
    ),
    topic("WHOIS", "WHOIS <nick>", &["Tells about a user."]),
    topic("WHOWAS", "WHOWAS <nick> [<count>]", &["Tells about a nick that has left."]),
];

/// The topic for `subject`, any case.
pub fn find(subject: &str) -> Option<&'static Topic> {
    TOPICS.iter().find(|t| t.name.eq_ignore_ascii_case(subject))
}
