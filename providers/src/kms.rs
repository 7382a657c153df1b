//! [`Kms`] on the SDK for one account and region: the aliases that carry
//! an encrypted source's key over to the copy's region.

use async_trait::async_trait;
use aws_sdk_kms::Client;
use lifeboat_engine::cloud::{CloudResult, KeyAlias, Kms, Page};

use crate::error::ErrorContext;

/// ListAliases takes 1 to 100 aliases per page.
const PAGE_SIZE: i32 = 100;

pub(crate) struct AwsKms {
    client: Client,
    ctx: ErrorContext,
}

impl AwsKms {
    pub(crate) fn new(client: Client, ctx: ErrorContext) -> Self {
        Self { client, ctx }
    }
}

/// The next page's marker. `Truncated` decides, not the marker's presence
/// (the emulator never pages, so this is checked here).
fn next_marker(truncated: bool, marker: Option<&str>) -> Option<String> {
    marker
        .filter(|m| truncated && !m.is_empty())
        .map(str::to_owned)
}

#[async_trait]
impl Kms for AwsKms {
    async fn aliases_page(
        &self,
        key_id: Option<&str>,
        token: Option<String>,
    ) -> CloudResult<Page<KeyAlias>> {
        let action = "kms:ListAliases";
        let out = self
            .client
            .list_aliases()
            .set_key_id(key_id.map(str::to_owned))
            .limit(PAGE_SIZE)
            .set_marker(token)
            .send()
            .await
            .map_err(|e| self.ctx.sdk(action, key_id, &e))?;
        let items = out
            .aliases()
            .iter()
            .filter_map(|a| {
                Some(KeyAlias {
                    name: a.alias_name()?.to_owned(),
                    target_key_id: a.target_key_id().map(str::to_owned),
                })
            })
            .collect();
        Ok(Page {
            items,
            next: next_marker(out.truncated(), out.next_marker()),
            call: self.ctx.call(action),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::next_marker;

    #[test]
    fn only_a_truncated_answer_has_a_next_page() {
        assert_eq!(next_marker(true, Some("m1")), Some("m1".to_owned()));
        assert_eq!(next_marker(false, Some("m1")), None);
        assert_eq!(next_marker(true, Some("")), None);
        assert_eq!(next_marker(true, None), None);
        assert_eq!(next_marker(false, None), None);
    }
}
