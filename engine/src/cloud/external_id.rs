//! An assumed role's external id is written nowhere by Lifeboat: the
//! state (an account's record, the configuration an apply recorded), plan
//! files and every view keep a keyed digest of it instead, which is enough
//! to tell a changed id from the same one. The id itself lives only in the
//! configuration files, and is put back into an account just before its
//! credentials are made ([`ExternalIds::resolve`], called by
//! [`super::identity::CheckedCloud`] for every client it hands out).
//!
//! The digest is HMAC-SHA256 keyed with the role's ARN: the same id under
//! two roles gives unrelated digests, so a table of digests computed for
//! one role serves no other. It does not make a short id safe: whoever
//! reads the state can test guesses against it (docs/security.md).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, KeyInit, Mac};
use lifeboat_schema::{Account, AssumeRole, Config, SEALED_EXTERNAL_ID};
use serde_json::Value;
use sha2::Sha256;

use super::{CloudError, CloudResult, ErrorKind};

/// Whether `id` is a digest this module made rather than an id.
pub fn is_sealed(id: &str) -> bool {
    id.starts_with(SEALED_EXTERNAL_ID)
}

/// The digest kept in place of `id`, the external id of `role_arn`.
pub fn seal(role_arn: &str, id: &str) -> String {
    if is_sealed(id) {
        return id.to_string();
    }
    let key = format!("lifeboat external id of {role_arn}");
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(id.as_bytes());
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("{SEALED_EXTERNAL_ID}{hex}")
}

fn sealed_role(role: &AssumeRole) -> AssumeRole {
    AssumeRole {
        external_id: role
            .external_id
            .as_deref()
            .map(|id| seal(&role.role_arn, id)),
        ..role.clone()
    }
}

/// `account` as it is written: its external id sealed.
pub fn sealed_account(account: &Account) -> Account {
    Account {
        assume_role: account.assume_role.as_ref().map(sealed_role),
        ..account.clone()
    }
}

/// `config` as it is written and digested: every external id sealed.
pub fn sealed_config(config: &Config) -> Config {
    let mut out = config.clone();
    for account in out.accounts.values_mut() {
        *account = sealed_account(account);
    }
    out
}

/// Seals, in a JSON value written by an older Lifeboat, every
/// `assume_role { role_arn external_id }` found at any depth. Returns
/// whether anything changed.
pub fn seal_json(v: &mut Value) -> bool {
    match v {
        Value::Object(m) => {
            let mut changed = false;
            if let (Some(Value::String(arn)), Some(Value::String(id))) =
                (m.get("role_arn"), m.get("external_id"))
            {
                if !is_sealed(id) {
                    let sealed = seal(arn, id);
                    m.insert("external_id".into(), Value::String(sealed));
                    changed = true;
                }
            }
            for x in m.values_mut() {
                changed |= seal_json(x);
            }
            changed
        }
        Value::Array(a) => a.iter_mut().fold(false, |c, x| seal_json(x) | c),
        _ => false,
    }
}

/// Where more ids may be found when a sealed account matches none known:
/// the binary reads its configuration files again (an apply may have added
/// an account since the runner started) and the environment
/// (`LIFEBOAT_EXTERNAL_ID_<ACCOUNT>`, for an account no longer in the files
/// whose backups are still being cleaned up). Pairs of account name (empty
/// when not known) and id.
pub type IdSource = Arc<dyn Fn() -> Vec<(String, String)> + Send + Sync>;

/// The external ids this host knows, by account name: what turns a sealed
/// account back into one whose role can be assumed.
#[derive(Default)]
pub struct ExternalIds {
    /// (account name, id) of the configuration loaded.
    loaded: Vec<(String, String)>,
    /// What the source gave, every distinct pair once (a runner that misses
    /// often keeps one copy), kept when a later read fails or gives less
    /// (files caught mid-edit); and when it was last asked.
    found: Mutex<Found>,
    more: Option<IdSource>,
}

/// Pairs of (account name, id) a source gave, and when it was asked.
type Found = (BTreeSet<(String, String)>, Option<Instant>);

/// How often, at most, the source is asked again: a lookup that keeps
/// missing (an id changed and not applied yet) reads the files once per
/// this, not once per client asked for.
const ASK_AGAIN: Duration = Duration::from_secs(30);

impl ExternalIds {
    pub fn new(config: &Config) -> ExternalIds {
        let loaded = config
            .accounts
            .iter()
            .filter_map(|(name, a)| {
                let id = a.assume_role.as_ref()?.external_id.as_ref()?;
                Some((name.clone(), id.clone()))
            })
            .collect();
        ExternalIds {
            loaded,
            ..ExternalIds::default()
        }
    }

    /// Also looks in `more` when no known id matches.
    pub fn with_source(mut self, more: IdSource) -> ExternalIds {
        self.more = Some(more);
        self
    }

    /// The known id whose digest under `role_arn` is `sealed`: the
    /// account's own first (by name), then any (an account renamed). A
    /// digest given in place of an id is never one: it would match itself.
    fn find(&self, name: &str, role_arn: &str, sealed: &str) -> Option<String> {
        let found = self.found.lock().expect("external ids");
        let all = || self.loaded.iter().chain(found.0.iter());
        all()
            .filter(|(n, _)| n == name)
            .chain(all().filter(|(n, _)| n != name))
            .map(|(_, id)| id)
            .find(|id| !is_sealed(id) && seal(role_arn, id) == sealed)
            .cloned()
    }

    /// Asks the source again, unless it was asked within [`ASK_AGAIN`].
    fn ask_again(&self) {
        let Some(more) = &self.more else {
            return;
        };
        {
            let found = self.found.lock().expect("external ids");
            if found.1.is_some_and(|at| at.elapsed() < ASK_AGAIN) {
                return;
            }
        }
        // Asked without the lock held: the source reads files.
        let fresh = more();
        let mut found = self.found.lock().expect("external ids");
        found.0.extend(fresh);
        found.1 = Some(Instant::now());
    }

    /// `account` with its role's external id in clear: as it is when it
    /// came from the configuration; when it came from the state (sealed),
    /// with the id whose digest under the same role matches, from the
    /// configuration or, failing that, from the source. Otherwise an error
    /// naming the account and the role: sending the digest to STS would
    /// only be refused.
    pub fn resolve<'a>(&self, account: &'a Account) -> CloudResult<Cow<'a, Account>> {
        let Some(role) = &account.assume_role else {
            return Ok(Cow::Borrowed(account));
        };
        let Some(sealed) = role.external_id.as_deref().filter(|id| is_sealed(id)) else {
            return Ok(Cow::Borrowed(account));
        };
        let mut clear = self.find(&account.name, &role.role_arn, sealed);
        if clear.is_none() {
            self.ask_again();
            clear = self.find(&account.name, &role.role_arn, sealed);
        }
        match clear {
            Some(id) => {
                let mut resolved = account.clone();
                if let Some(r) = resolved.assume_role.as_mut() {
                    r.external_id = Some(id);
                }
                Ok(Cow::Owned(resolved))
            }
            None => Err(CloudError {
                kind: ErrorKind::Other,
                account: account.name.clone(),
                region: account.regions.first().cloned().unwrap_or_default(),
                action: "sts:AssumeRole".into(),
                resource: Some(role.role_arn.clone()),
                code: None,
                message: format!(
                    "the state keeps the external id of role {} only as a digest, and this host knows no external id for that role that matches it (a changed id not applied yet, or an account missing from these files); declare account {:?} with its assume_role external_id here, or set {}",
                    role.role_arn,
                    account.name,
                    env_name(&account.name)
                ),
            }),
        }
    }
}

/// The environment variable that may give `account`'s external id:
/// `LIFEBOAT_EXTERNAL_ID_` and the name in capitals, any character but a
/// letter or digit as `_`.
pub fn env_name(account: &str) -> String {
    let name: String = account
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{ENV_PREFIX}{name}")
}

/// What starts the variables [`env_name`] makes.
pub const ENV_PREFIX: &str = "LIFEBOAT_EXTERNAL_ID_";

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn account(name: &str, arn: &str, id: Option<&str>) -> Account {
        serde_json::from_value(json!({
            "name": name, "kind": "backup", "regions": ["us-east-1"], "profile": null,
            "assume_role": {"role_arn": arn, "external_id": id, "session_name": null},
            "allow_delete": true,
        }))
        .unwrap()
    }

    #[test]
    fn a_digest_tells_ids_and_roles_apart_and_is_made_once() {
        let a = seal("arn:aws:iam::1:role/a", "ext-7f3a9c");
        assert!(is_sealed(&a), "{a}");
        assert_eq!(a.len(), SEALED_EXTERNAL_ID.len() + 64);
        assert!(!a.contains("ext-7f3a9c"));
        assert_eq!(a, seal("arn:aws:iam::1:role/a", "ext-7f3a9c"));
        assert_ne!(a, seal("arn:aws:iam::1:role/b", "ext-7f3a9c"));
        assert_ne!(a, seal("arn:aws:iam::1:role/a", "ext-7f3a9d"));
        // Sealing a digest again leaves it as it is.
        assert_eq!(seal("arn:aws:iam::1:role/a", &a), a);
    }

    #[test]
    fn the_digest_is_hmac_sha256_keyed_with_the_role() {
        // RFC 4231 test case 2 ("Jefe" / "what do ya want for nothing?"),
        // through the same construction with the key given directly.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let hex: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_sealed_account_is_resolved_from_the_configuration_that_matches_it() {
        let clear = account("prod", "arn:aws:iam::1:role/lb", Some("ext-7f3a9c"));
        let sealed = sealed_account(&clear);
        assert_ne!(sealed, clear);
        let mut config = Config::default();
        config.accounts.insert("prod".into(), clear.clone());
        let ids = ExternalIds::new(&config);
        assert_eq!(*ids.resolve(&sealed).unwrap(), clear);
        // An account from the configuration passes as it is.
        assert!(matches!(ids.resolve(&clear).unwrap(), Cow::Borrowed(_)));

        // Another id in the files (changed, not applied): refused, named.
        let mut other = Config::default();
        other.accounts.insert(
            "prod".into(),
            account("prod", "arn:aws:iam::1:role/lb", Some("new-id")),
        );
        let e = ExternalIds::new(&other).resolve(&sealed).unwrap_err();
        assert_eq!(e.account, "prod");
        assert_eq!(e.action, "sts:AssumeRole");
        assert!(e.message.contains("only as a digest"), "{e}");
        assert!(!e.message.contains("new-id") && !e.message.contains("ext-7f3a9c"));
        // No such account in these files at all.
        let e = ExternalIds::default().resolve(&sealed).unwrap_err();
        assert!(e.message.contains("LIFEBOAT_EXTERNAL_ID_PROD"), "{e}");
        // Found by the source (the files read again, the environment),
        // asked only on a miss.
        let asked = Arc::new(Mutex::new(0));
        let counted = asked.clone();
        let ids = ExternalIds::new(&other).with_source(Arc::new(move || {
            *counted.lock().unwrap() += 1;
            vec![(String::new(), "ext-7f3a9c".to_string())]
        }));
        assert_eq!(*ids.resolve(&sealed).unwrap(), clear);
        assert_eq!(*ids.resolve(&sealed).unwrap(), clear);
        assert_eq!(*asked.lock().unwrap(), 1, "kept once found");
        // A miss asks again at most once per ASK_AGAIN.
        let unknown = sealed_account(&account("prod", "arn:aws:iam::1:role/lb", Some("nope")));
        assert!(ids.resolve(&unknown).is_err());
        assert!(ids.resolve(&unknown).is_err());
        assert_eq!(*asked.lock().unwrap(), 1, "not asked again so soon");
        // A digest given as an id (copied from a plan) matches nothing.
        let given = ExternalIds::new(&Config::default()).with_source(Arc::new({
            let digest = sealed
                .assume_role
                .as_ref()
                .unwrap()
                .external_id
                .clone()
                .unwrap();
            move || vec![(String::new(), digest.clone())]
        }));
        assert!(given.resolve(&sealed).is_err());
        assert_eq!(env_name("old-prod.eu"), "LIFEBOAT_EXTERNAL_ID_OLD_PROD_EU");
    }

    #[test]
    fn json_of_an_older_lifeboat_is_sealed_at_any_depth() {
        let mut v = json!({"accounts": {"prod": {"assume_role":
            {"role_arn": "arn:aws:iam::1:role/lb", "external_id": "ext-7f3a9c"}}},
            "other": [{"assume_role": {"role_arn": "r", "external_id": null}}]});
        assert!(seal_json(&mut v));
        let text = v.to_string();
        assert!(!text.contains("ext-7f3a9c"), "{text}");
        assert_eq!(
            v["accounts"]["prod"]["assume_role"]["external_id"],
            seal("arn:aws:iam::1:role/lb", "ext-7f3a9c")
        );
        assert!(!seal_json(&mut v), "sealed once");
    }
}
