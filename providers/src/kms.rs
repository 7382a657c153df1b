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
        // `Truncated` decides, not the marker's presence: a marker that
        // comes with `Truncated` false is not a next page.
        let next = out
            .next_marker()
            .filter(|m| out.truncated() && !m.is_empty())
            .map(str::to_owned);
        Ok(Page {
            items,
            next,
            call: self.ctx.call(action),
        })
    }
}
