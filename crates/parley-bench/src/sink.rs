//! `ircload sink`: the least an IRC server can do for these scenarios.
//! Registration is NICK + USER answered by a bare 001; JOIN adds you to a
//! channel and tells its members; PRIVMSG to a channel is copied to every
//! other member, to a nick to that user; PING gets PONG; QUIT closes.
//! No limits, no modes, no checks. Running the scenarios against it shows
//! how much the generator can drive on this machine, which must be more
//! than any real server reaches.

use crate::irc::{Line, LineBuf};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Address to listen on (loopback).
    #[arg(long, default_value = "127.0.0.1:6667")]
    pub listen: SocketAddr,
}

/// One client's outgoing bytes.
struct Out {
    buf: Mutex<Vec<u8>>,
    wake: Notify,
    closed: AtomicBool,
    /// Held by the writer task while it takes and writes the queue, so a
    /// sender that gets it finds nothing in flight and may write directly.
    wr: tokio::sync::Mutex<OwnedWriteHalf>,
}

/// A queue bigger than this means the client is not reading: drop it.
const MAX_QUEUE: usize = 64 << 20;

impl Out {
    fn push(&self, line: &[u8]) {
        let mut b = self.buf.lock().unwrap_or_else(|p| p.into_inner());
        if b.len() > MAX_QUEUE {
            self.closed.store(true, Relaxed);
        } else {
            b.extend_from_slice(line);
        }
        let was_empty = b.len() == line.len();
        drop(b);
        if was_empty || self.closed.load(Relaxed) {
            self.wake.notify_one();
        }
    }

    /// A private message's path: written at once by the sender when nothing
    /// is queued or being written (what a real server does for one
    /// recipient, so the ping-pong measures the machine's floor rather than
    /// this sink's hand-off to its writer task); queued otherwise.
    fn send(&self, line: &[u8]) {
        if let Ok(wr) = self.wr.try_lock() {
            let mut b = self.buf.lock().unwrap_or_else(|p| p.into_inner());
            if b.is_empty() {
                let n = wr.try_write(line).unwrap_or(0);
                if n == line.len() {
                    return;
                }
                b.extend_from_slice(&line[n..]);
                drop(b);
                self.wake.notify_one();
                return;
            }
        }
        self.push(line);
    }
}

#[derive(Default)]
struct State {
    channels: HashMap<Vec<u8>, Vec<(u64, Arc<Out>)>>,
    nicks: HashMap<Vec<u8>, Arc<Out>>,
}

async fn writer(out: Arc<Out>) {
    let mut spare = Vec::new();
    loop {
        let notified = out.wake.notified();
        let mut wr = out.wr.lock().await;
        {
            let mut b = out.buf.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::swap(&mut *b, &mut spare);
        }
        if spare.is_empty() {
            if out.closed.load(Relaxed) {
                let _ = wr.shutdown().await;
                return;
            }
            drop(wr);
            notified.await;
            continue;
        }
        if wr.write_all(&spare).await.is_err() {
            out.closed.store(true, Relaxed);
            return;
        }
        drop(wr);
        spare.clear();
        if spare.capacity() > 1 << 20 {
            spare = Vec::new();
        }
    }
}

fn lower(s: &[u8]) -> Vec<u8> {
    s.to_ascii_lowercase()
}

async fn client(stream: TcpStream, id: u64, state: Arc<RwLock<State>>) {
    let _ = stream.set_nodelay(true);
    let (mut rd, wr) = stream.into_split();
    let out = Arc::new(Out {
        buf: Mutex::new(Vec::new()),
        wake: Notify::new(),
        closed: AtomicBool::new(false),
        wr: tokio::sync::Mutex::new(wr),
    });
    let w = tokio::spawn(writer(out.clone()));
    let mut lines = LineBuf::new(16 * 1024);
    let mut nick: Vec<u8> = Vec::new();
    let mut registered = false;
    let mut joined: Vec<Vec<u8>> = Vec::new();
    let mut line_out = Vec::with_capacity(600);
    'conn: loop {
        match lines.fill(&mut rd).await {
            Ok(n) if n > 0 => {}
            _ => break,
        }
        if out.closed.load(Relaxed) {
            break;
        }
        while let Some(raw) = lines.next_line() {
            let l = Line::parse(raw);
            match l.command {
                b"NICK" => nick = l.first_param().to_vec(),
                b"USER" if !registered && !nick.is_empty() => {
                    registered = true;
                    state.write().unwrap_or_else(|p| p.into_inner()).nicks.insert(lower(&nick), out.clone());
                    line_out.clear();
                    line_out.extend_from_slice(b":sink 001 ");
                    line_out.extend_from_slice(&nick);
                    line_out.extend_from_slice(b" :Welcome to the sink\r\n");
                    out.push(&line_out);
                }
                b"PING" => {
                    line_out.clear();
                    line_out.extend_from_slice(b":sink PONG sink :");
                    line_out.extend_from_slice(l.trailing());
                    line_out.extend_from_slice(b"\r\n");
                    out.push(&line_out);
                }
                b"JOIN" if registered => {
                    let chan = l.first_param().to_vec();
                    line_out.clear();
                    line_out.push(b':');
                    line_out.extend_from_slice(&nick);
                    line_out.extend_from_slice(b"!u@sink JOIN ");
                    line_out.extend_from_slice(&chan);
                    line_out.extend_from_slice(b"\r\n");
                    let key = lower(&chan);
                    let mut st = state.write().unwrap_or_else(|p| p.into_inner());
                    let members = st.channels.entry(key.clone()).or_default();
                    if !members.iter().any(|(m, _)| *m == id) {
                        members.push((id, out.clone()));
                        joined.push(key);
                        for (_, m) in members.iter() {
                            m.push(&line_out);
                        }
                    }
                }
                b"PRIVMSG" | b"NOTICE" if registered => {
                    let target = l.first_param();
                    line_out.clear();
                    line_out.push(b':');
                    line_out.extend_from_slice(&nick);
                    line_out.extend_from_slice(b"!u@sink ");
                    line_out.extend_from_slice(l.command);
                    line_out.push(b' ');
                    line_out.extend_from_slice(l.params);
                    line_out.extend_from_slice(b"\r\n");
                    // Read lock: senders in different tasks fan out at once.
                    let st = state.read().unwrap_or_else(|p| p.into_inner());
                    if target.starts_with(b"#") {
                        if let Some(members) = st.channels.get(&lower(target)) {
                            for (m, o) in members {
                                if *m != id {
                                    o.push(&line_out);
                                }
                            }
                        }
                    } else if let Some(o) = st.nicks.get(&lower(target)) {
                        o.send(&line_out);
                    }
                }
                b"QUIT" => break 'conn,
                _ => {}
            }
        }
    }
    {
        let mut st = state.write().unwrap_or_else(|p| p.into_inner());
        for key in &joined {
            if let Some(members) = st.channels.get_mut(key) {
                members.retain(|(m, _)| *m != id);
                if members.is_empty() {
                    st.channels.remove(key);
                }
            }
        }
        if registered {
            st.nicks.remove(&lower(&nick));
        }
    }
    out.push(b"ERROR :Closing link\r\n");
    out.closed.store(true, Relaxed);
    out.wake.notify_one();
    let _ = w.await;
}

pub async fn run(a: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(a.listen.ip().is_loopback(), "the sink listens on loopback only");
    let listener = TcpListener::bind(a.listen).await?;
    println!("ircload sink ready irc={}", listener.local_addr()?);
    let state = Arc::new(RwLock::new(State::default()));
    let ids = AtomicU64::new(1);
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(a) => a,
            Err(_) => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                continue;
            }
        };
        let id = ids.fetch_add(1, Relaxed);
        tokio::spawn(client(stream, id, state.clone()));
    }
}
