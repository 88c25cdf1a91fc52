use super::entry::{Entry, Kind, Parts};
use super::query::{self, Reference, Scope, Selector};
use super::History;
use crate::config::HistoryConfig;
use std::collections::HashSet;

fn open(config: HistoryConfig) -> (tempfile::TempDir, std::sync::Arc<History>, super::Writer) {
    let dir = tempfile::tempdir().unwrap();
    let db = crate::db::Db::open(dir.path()).unwrap();
    let (h, w) = History::open(&db, &config, "#lobby", "").unwrap();
    (dir, h, w)
}

fn say(h: &History, target: &str, at: i64, text: &str) {
    let msgid = format!("m{at}");
    let parts = Parts { target, msgid: &msgid, sender: "n!u@h", account: None, shown: target, tags: "", text };
    h.record(Entry::new(at, Kind::Privmsg, &parts));
}

fn texts(h: &History, target: &str, selector: Selector, limit: usize) -> Vec<String> {
    let scope = Scope { target, until: i64::MAX, events: false };
    query::select(h.reader().unwrap().conn(), &scope, &selector, limit).unwrap().into_iter().map(|m| m.text).collect()
}

fn sqlite<T>(h: &History, f: impl FnOnce(&rusqlite::Connection) -> T) -> T {
    match h.reader().unwrap().conn() {
        crate::db::Conn::Sqlite(c) => f(c),
        crate::db::Conn::Postgres(_) => unreachable!("these tests open SQLite"),
    }
}

fn count(h: &History) -> i64 {
    sqlite(h, |c| c.query_row("SELECT count(*) FROM history", [], |r| r.get(0)).unwrap())
}

#[test]
fn a_flush_makes_what_was_queued_readable_and_a_stop_writes_the_rest() {
    let (dir, h, w) = open(HistoryConfig { batch_window_ms: 1000, ..Default::default() });
    say(&h, "#a", 1, "one");
    assert!(h.flush());
    assert_eq!(texts(&h, "#a", Selector::Latest(None), 10), ["one"]);
    say(&h, "#a", 2, "two");
    w.stop();
    drop(h);
    let db = crate::db::Db::open(dir.path()).unwrap();
    let (h, _w) = History::open(&db, &HistoryConfig::default(), "#lobby", "").unwrap();
    assert_eq!(texts(&h, "#a", Selector::Latest(None), 10), ["one", "two"], "nothing queued was lost");
}

#[test]
fn pages_in_either_direction_meet_without_gaps_or_duplicates() {
    let (_dir, h, _w) = open(HistoryConfig::default());
    for i in 0..25 {
        say(&h, "#a", 1000 + i, &format!("{i}"));
        say(&h, "#b", 1000 + i, "other");
    }
    assert!(h.flush());
    // Backwards from the end, 10 at a time.
    let mut seen = Vec::new();
    let mut page = texts(&h, "#a", Selector::Latest(None), 10);
    while !page.is_empty() {
        let first: i64 = page[0].parse().unwrap();
        seen.splice(0..0, page);
        page = texts(&h, "#a", Selector::Before(Reference::Msgid(format!("m{}", 1000 + first))), 10);
    }
    let all: Vec<String> = (0..25).map(|i| i.to_string()).collect();
    assert_eq!(seen, all);
    // Forwards from the start by time.
    let mut seen = Vec::new();
    let mut after = Reference::Time(0);
    loop {
        let page = texts(&h, "#a", Selector::After(after), 7);
        let Some(last) = page.last() else { break };
        after = Reference::Time(1000 + last.parse::<i64>().unwrap());
        seen.extend(page);
    }
    assert_eq!(seen, all);
    let around = texts(&h, "#a", Selector::Around(Reference::Msgid("m1010".into())), 3);
    assert_eq!(around, ["9", "10", "11"]);
    let between = Selector::Between(Reference::Msgid("m1020".into()), Reference::Msgid("m1010".into()));
    assert_eq!(texts(&h, "#a", between, 3), ["17", "18", "19"], "backwards from the first reference");
    assert!(texts(&h, "#a", Selector::Before(Reference::Msgid("m9999".into())), 5).is_empty());
    assert!(texts(&h, "#b", Selector::Before(Reference::Msgid("nope".into())), 5).is_empty());
}

#[test]
fn a_full_queue_drops_and_counts_instead_of_waiting() {
    let (_dir, h, _w) = open(HistoryConfig { queue_entries: 3, batch_window_ms: 1000, ..Default::default() });
    for i in 0..5 {
        say(&h, "#a", i, "x");
    }
    assert_eq!(h.losses(), (2, 0));
    assert!(h.flush());
    assert_eq!(count(&h), 3);
}

#[test]
fn retention_deletes_by_age_and_by_count_per_target() {
    let day = 24 * 60 * 60 * 1000;
    let now = 100 * day;
    let mut config = HistoryConfig { max_age_days: 10, ..Default::default() };
    config.retention.insert("#Kept".into(), crate::config::Retention { max_age_days: 0, max_messages: 2 });
    let (_dir, h, _w) = open(config.clone());
    for (target, at) in [("#old", now - 20 * day), ("#old", now - day), ("#kept", now - 50 * day)] {
        say(&h, target, at, "x");
    }
    for i in 0..4 {
        say(&h, "#kept", now - i, "y");
    }
    assert!(h.flush());
    let touched: HashSet<String> = ["#old".to_string(), "#kept".to_string()].into();
    let deleted = sqlite(&h, |c| super::writer::prune(c, &config, now, &mut touched.clone()).unwrap());
    assert_eq!(deleted, 1 + 3, "one too old in #old; #kept keeps its newest two, whatever their age");
    assert_eq!(texts(&h, "#old", Selector::Latest(None), 10).len(), 1);
    let indexed: i64 = sqlite(&h, |c| {
        c.query_row("SELECT count(*) FROM history_text WHERE history_text MATCH 'x OR y'", [], |r| r.get(0)).unwrap()
    });
    assert_eq!(indexed, 1 + 2, "deleted messages left the search index too");
    assert_eq!(texts(&h, "#kept", Selector::Latest(None), 10), ["y", "y"]);
}

#[test]
fn search_finds_words_only_in_the_targets_given() {
    use super::search::{search, Readable, Search};
    let (_dir, h, _w) = open(HistoryConfig::default());
    say(&h, "#a", 1, "the quick brown fox");
    say(&h, "#a", 2, "a slow brown dog");
    say(&h, "#b", 3, "brown bread");
    say(&h, "#a", 4, "OR text:fox \"quoted\"");
    assert!(h.flush());
    let find = |text: &str, targets: &[&str]| -> Vec<String> {
        let readable: Vec<Readable> =
            targets.iter().map(|t| Readable { key: t.to_string(), until: i64::MAX }).collect();
        let s = Search { text: Some(text), from: None, after: None, before: None, limit: 10 };
        search(h.reader().unwrap().conn(), &readable, &s).unwrap().into_iter().map(|m| m.text).collect()
    };
    assert_eq!(find("brown", &["#a"]), ["the quick brown fox", "a slow brown dog"]);
    assert_eq!(find("brown", &["#a", "#b"]).len(), 3);
    assert_eq!(find("BROWN fox", &["#a", "#b"]), ["the quick brown fox"]);
    assert!(find("brown", &[]).is_empty(), "nothing readable, nothing found");
    assert_eq!(find("text:fox", &["#a"]).len(), 1, "FTS syntax is only words");
}
