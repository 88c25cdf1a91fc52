//! The `[accounts]` section: who may make an account, how a new one is
//! verified, and what happens to someone using a registered nick.

use super::{invalid, ConfigError};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccountsConfig {
    /// Users may make their own accounts (`REGISTER`, `NickServ REGISTER`).
    /// When false, only `parleyd account add` makes them.
    pub self_registration: bool,
    /// `REGISTER` is allowed before the connection is registered (the
    /// `before-connect` flag of `draft/account-registration`).
    pub register_before_connect: bool,
    /// A program that delivers a new account's verification code (for
    /// example by mail): run with `PARLEY_ACCOUNT`, `PARLEY_EMAIL` and
    /// `PARLEY_CODE` in its environment. When set, `REGISTER` needs an
    /// e-mail address and the account cannot log in until `VERIFY`. Unset:
    /// accounts are usable at once.
    pub verify_command: Option<String>,
    /// How long `verify_command` may run before it is killed.
    pub verify_command_timeout_secs: u64,
    /// What happens to a user whose nick is an account's name without being
    /// logged in to it: `"rename"` (after `nick_grace_secs`, to a guest
    /// nick), `"refuse"` (the nick cannot be taken: 433) or `"off"`.
    pub nick_enforcement: NickEnforcement,
    /// Time to log in (NickServ IDENTIFY) before a nick is taken back.
    pub nick_grace_secs: u64,
    /// Self-registrations allowed from one address within
    /// `registration_window_secs`.
    pub registrations_per_ip: u32,
    /// Self-registrations allowed in all within `registration_window_secs`.
    pub registrations_total: u32,
    pub registration_window_secs: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NickEnforcement {
    Off,
    Refuse,
    Rename,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        AccountsConfig {
            self_registration: true,
            register_before_connect: true,
            verify_command: None,
            verify_command_timeout_secs: 10,
            nick_enforcement: NickEnforcement::Rename,
            nick_grace_secs: 30,
            registrations_per_ip: 5,
            registrations_total: 100,
            registration_window_secs: 3600,
        }
    }
}

impl AccountsConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.verify_command.as_deref().is_some_and(|c| c.trim().is_empty()) {
            return Err(invalid("accounts.verify_command", "must name a program, or be left out"));
        }
        if self.verify_command_timeout_secs == 0 {
            return Err(invalid("accounts.verify_command_timeout_secs", "must be at least 1 second"));
        }
        if self.nick_enforcement == NickEnforcement::Rename && self.nick_grace_secs == 0 {
            return Err(invalid(
                "accounts.nick_grace_secs",
                "must be at least 1 second with nick_enforcement = \"rename\"",
            ));
        }
        if self.registrations_per_ip == 0 || self.registrations_total == 0 {
            return Err(invalid(
                "accounts.registrations_per_ip",
                "registrations_per_ip and registrations_total must be at least 1 (turn registration off with self_registration = false)",
            ));
        }
        if self.registration_window_secs == 0 {
            return Err(invalid("accounts.registration_window_secs", "must be at least 1 second"));
        }
        Ok(())
    }
}
