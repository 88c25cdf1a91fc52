//! `ircload dns`: a loopback DNS responder that answers every query at
//! once with NXDOMAIN. Some servers (ircd-hybrid) always look up a
//! client's host name and cannot be told not to; pointed at this (through
//! a private resolv.conf), the lookup fails instantly, exactly like a
//! server that does no lookups, and no query ever leaves the machine.

use std::net::SocketAddr;
use tokio::net::UdpSocket;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Address to answer on (loopback).
    #[arg(long, default_value = "127.0.0.1:53")]
    pub listen: SocketAddr,
}

/// The NXDOMAIN answer to `query`, or None if it is not a DNS query.
pub fn nxdomain(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || query[2] & 0x80 != 0 {
        return None;
    }
    // Header, then the question section copied as it came (name, type, class).
    let mut end = 12;
    let qdcount = u16::from_be_bytes([query[4], query[5]]);
    for _ in 0..qdcount {
        loop {
            let len = *query.get(end)? as usize;
            end += 1;
            if len == 0 {
                break;
            }
            if len & 0xc0 != 0 {
                end += 1;
                break;
            }
            end += len;
        }
        end += 4;
    }
    if end > query.len() {
        return None;
    }
    let mut r = query[..end].to_vec();
    let opcode = query[2] & 0x78;
    let rd = query[2] & 0x01;
    r[2] = 0x80 | opcode | 0x04 | rd; // QR, AA
    r[3] = 0x80 | 0x03; // RA, NXDOMAIN
    r[6..12].fill(0);
    Some(r)
}

pub async fn run(a: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(a.listen.ip().is_loopback(), "the resolver answers on loopback only");
    let sock = UdpSocket::bind(a.listen).await?;
    println!("ircload dns ready udp={}", sock.local_addr()?);
    let mut buf = vec![0u8; 4096];
    loop {
        let (n, from) = sock.recv_from(&mut buf).await?;
        if !from.ip().is_loopback() {
            continue;
        }
        if let Some(resp) = nxdomain(&buf[..n]) {
            let _ = sock.send_to(&resp, from).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ptr_query_gets_nxdomain_with_the_question() {
        // id 0x1234, RD, one question: 1.0.0.127.in-addr.arpa PTR IN
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in ["1", "0", "0", "127", "in-addr", "arpa"] {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 12, 0, 1]);
        let r = nxdomain(&q).unwrap();
        assert_eq!(&r[..2], &[0x12, 0x34]);
        assert_eq!(r[3] & 0x0f, 3);
        assert_eq!(r[2] & 0x80, 0x80);
        assert_eq!(&r[12..], &q[12..]);
    }
}
