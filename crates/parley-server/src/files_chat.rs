//! The chat as the file store sees it: `files::Chat` for `ServerState`
//! (who holds a session, the lobby's announcements, an account's history
//! export). Apart from `server.rs` so that the server's state does not
//! name the file store, which reaches the chat only through this trait.

use crate::files::{Chat, Holder};
use crate::outbound::OutBatch;
use crate::relay::Relay;
use crate::server::ServerState;
use parley_proto::Message;

impl Chat for ServerState {
    fn holder(&self, sid: u64) -> Option<Holder> {
        let view = self.registry.read();
        let user = view.user(sid)?;
        Some(Holder {
            nick: user.nick.clone(),
            account: user.account.as_deref().map(str::to_string),
            oper: user.oper.is_some(),
        })
    }

    fn announce(&self, text: &str) {
        let config = self.config.current();
        let lobby = &config.irc.lobby;
        let msg = Message::new("NOTICE", vec![lobby.clone(), text.to_string()]).with_source(config.server_name.clone());
        let relay = Relay::new(msg, Vec::new());
        // One batch: each member's line is written when it ends, after the
        // registry lock is released.
        let _batch = OutBatch::begin();
        self.registry.announce(lobby, &relay);
    }

    fn file_changed(&self, name: &str, announce: Option<&str>) {
        if let Some(cluster) = &self.cluster {
            cluster.file_changed(name, announce);
        }
    }

    fn export_history(&self, account: &str) -> Option<Result<Vec<u8>, String>> {
        let history = self.history.as_ref()?;
        if !history.flush() {
            return Some(Err("the history writer has stopped".into()));
        }
        let all = history
            .reader()
            .and_then(|mut conn| crate::history::manage::export(conn.conn(), account))
            .map_err(|e| e.to_string());
        Some(all.and_then(|v| serde_json::to_vec_pretty(&v).map_err(|e| e.to_string())))
    }
}
