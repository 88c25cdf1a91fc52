//! A node's snapshot in parts: each part fits one NATS message (NATS
//! refuses anything above its `max_payload`, 1 MB by default), and the
//! receiver applies nothing until the last part is in, so users missing
//! from the whole snapshot quit only then. Parts travel on the node's
//! state subject like its events, so they arrive in order; a gap (a part
//! lost while a connection was re-established) throws the parts away and
//! asks for the snapshot again.

use super::wire::{ChannelInfo, Event, TopicInfo, UserInfo};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::Mutex;

/// The most JSON one part carries, well under NATS's default 1 MB limit
/// (the envelope and the origin add a few dozen bytes); less if the NATS
/// server allows less (a quarter of its `max_payload`, `Outbox`).
pub const PART_BYTES: usize = 256 * 1024;

/// Splits a snapshot into parts of at most about `budget` bytes of JSON
/// each (a single item larger than that still goes, alone).
pub fn split(users: Vec<UserInfo>, topics: Vec<TopicInfo>, channels: Vec<ChannelInfo>, budget: usize) -> Vec<Event> {
    let mut parts = Vec::new();
    let mut cur = Part::default();
    for user in users {
        cur.room_for(json_len(&user), budget, &mut parts);
        cur.users.push(user);
    }
    for topic in topics {
        cur.room_for(json_len(&topic), budget, &mut parts);
        cur.topics.push(topic);
    }
    for chan in channels {
        cur.room_for(json_len(&chan), budget, &mut parts);
        cur.channels.push(chan);
    }
    parts.push(cur.into_event(parts.len() as u32, true));
    parts
}

#[derive(Default)]
struct Part {
    users: Vec<UserInfo>,
    topics: Vec<TopicInfo>,
    channels: Vec<ChannelInfo>,
    bytes: usize,
}

impl Part {
    /// Closes this part first if `len` more bytes would not fit.
    fn room_for(&mut self, len: usize, budget: usize, parts: &mut Vec<Event>) {
        if self.bytes > 0 && self.bytes + len > budget {
            let full = std::mem::take(self);
            parts.push(full.into_event(parts.len() as u32, false));
        }
        self.bytes += len + 1;
    }

    fn into_event(self, part: u32, last: bool) -> Event {
        Event::Snapshot { users: self.users, topics: self.topics, channels: self.channels, part, last }
    }
}

/// The length of an item's JSON.
fn json_len<T: Serialize>(item: &T) -> usize {
    serde_json::to_vec(item).map_or(0, |v| v.len())
}

/// The parts received so far of each node's snapshot.
#[derive(Default)]
pub struct Pending {
    map: Mutex<HashMap<String, Collected>>,
}

#[derive(Default)]
pub struct Collected {
    pub inc: u64,
    next: u32,
    pub users: Vec<UserInfo>,
    pub topics: Vec<TopicInfo>,
    pub channels: Vec<ChannelInfo>,
}

/// What one part means to the receiver.
pub enum Arrived {
    /// Kept; more parts to come.
    Partial,
    /// The last part: the whole snapshot.
    Whole(Collected),
    /// A part is missing: ask again.
    Gap,
}

impl Pending {
    /// Adds part `part` of node `node`'s (incarnation `inc`) snapshot.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &self,
        node: &str,
        inc: u64,
        part: u32,
        last: bool,
        users: Vec<UserInfo>,
        topics: Vec<TopicInfo>,
        channels: Vec<ChannelInfo>,
    ) -> Arrived {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if part == 0 {
            map.insert(node.to_string(), Collected { inc, ..Default::default() });
        }
        let Some(c) = map.get_mut(node).filter(|c| c.inc == inc && c.next == part) else {
            map.remove(node);
            return Arrived::Gap;
        };
        c.next += 1;
        c.users.extend(users);
        c.topics.extend(topics);
        c.channels.extend(channels);
        if last {
            Arrived::Whole(map.remove(node).unwrap_or_default())
        } else {
            Arrived::Partial
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(i: u64) -> UserInfo {
        UserInfo {
            id: i,
            nick: format!("user{i}"),
            user: "u".into(),
            host: "127.0.0.1".into(),
            realname: "x".repeat(100),
            account: None,
            signon: 0,
            channels: vec![("#lobby".into(), false, false)],
            away: None,
            invisible: false,
            oper: false,
        }
    }

    #[test]
    fn a_big_snapshot_goes_in_parts_that_each_fit_and_come_back_whole() {
        let users: Vec<UserInfo> = (0..5_000).map(user).collect();
        let parts = split(users, Vec::new(), Vec::new(), PART_BYTES);
        assert!(parts.len() > 1, "{} parts", parts.len());
        let pending = Pending::default();
        let mut whole = None;
        for (i, part) in parts.into_iter().enumerate() {
            assert!(serde_json::to_vec(&part).unwrap().len() <= PART_BYTES + 1024, "part {i} fits");
            let Event::Snapshot { users, topics, channels, part, last } = part else { panic!() };
            assert_eq!(part as usize, i);
            match pending.add("b", 7, part, last, users, topics, channels) {
                Arrived::Partial => assert!(!last),
                Arrived::Whole(c) => whole = Some(c),
                Arrived::Gap => panic!("gap at {i}"),
            }
        }
        assert_eq!(whole.expect("the last part completes it").users.len(), 5_000);
    }

    #[test]
    fn a_missing_part_is_a_gap_and_nothing_is_applied() {
        let pending = Pending::default();
        assert!(matches!(pending.add("b", 1, 0, false, vec![user(1)], vec![], vec![]), Arrived::Partial));
        assert!(matches!(pending.add("b", 1, 2, true, vec![user(2)], vec![], vec![]), Arrived::Gap));
        assert!(matches!(pending.add("b", 1, 1, true, vec![], vec![], vec![]), Arrived::Gap), "forgotten");
        let small = split(vec![user(1)], vec![], vec![], PART_BYTES);
        assert!(matches!(small.as_slice(), [Event::Snapshot { part: 0, last: true, .. }]));
    }
}
