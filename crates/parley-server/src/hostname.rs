//! How a client's address is shown as the host part of its hostmask.

/// The `host` part shown for an address: the IP, with a leading `0`
/// for IPv6 forms that would otherwise start with `:` and break the
/// parameter syntax.
pub fn host_for(ip: std::net::IpAddr) -> String {
    let s = ip.to_string();
    if s.starts_with(':') {
        format!("0{s}")
    } else {
        s
    }
}
