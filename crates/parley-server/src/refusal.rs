//! Why the registry or a channel said no: one variant per rule, with what the client
//! needs to hear. `commands` turns each into its numeric and sentence in
//! one place (`Ctx::refuse`).

use parley_proto::numeric::*;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NoSuchNick(String),
    NoSuchChannel(String),
    NotOnChannel(String),
    ChanOpPrivsNeeded(String),
    UserNotInChannel {
        nick: String,
        channel: String,
    },
    UserOnChannel {
        nick: String,
        channel: String,
    },
    NickInUse(String),
    TooManyChannels(String),
    InviteOnly(String),
    BadKey(String),
    ChannelFull(String),
    Banned(String),
    /// `why` names the mode that refused it.
    CannotSend {
        channel: String,
        why: &'static str,
    },
}

impl Refusal {
    /// The numeric and its parameters after the client's nick.
    pub fn numeric(&self) -> (&'static str, Vec<&str>) {
        use Refusal::*;
        match self {
            NoSuchNick(n) => (ERR_NOSUCHNICK, vec![n, "No such nick/channel"]),
            NoSuchChannel(c) => (ERR_NOSUCHCHANNEL, vec![c, "No such channel"]),
            NotOnChannel(c) => (ERR_NOTONCHANNEL, vec![c, "You're not on that channel"]),
            ChanOpPrivsNeeded(c) => (ERR_CHANOPRIVSNEEDED, vec![c, "You're not channel operator"]),
            UserNotInChannel { nick, channel } => {
                (ERR_USERNOTINCHANNEL, vec![nick, channel, "They aren't on that channel"])
            }
            UserOnChannel { nick, channel } => (ERR_USERONCHANNEL, vec![nick, channel, "is already on channel"]),
            NickInUse(n) => (ERR_NICKNAMEINUSE, vec![n, "Nickname is already in use"]),
            TooManyChannels(c) => (ERR_TOOMANYCHANNELS, vec![c, "You have joined too many channels"]),
            InviteOnly(c) => (ERR_INVITEONLYCHAN, vec![c, "Cannot join channel (+i): you need an invitation"]),
            BadKey(c) => (ERR_BADCHANNELKEY, vec![c, "Cannot join channel (+k): wrong or missing key"]),
            ChannelFull(c) => (ERR_CHANNELISFULL, vec![c, "Cannot join channel (+l): it is full"]),
            Banned(c) => (ERR_BANNEDFROMCHAN, vec![c, "Cannot join channel (+b): you are banned"]),
            CannotSend { channel, why } => (ERR_CANNOTSENDTOCHAN, vec![channel, why]),
        }
    }
}
