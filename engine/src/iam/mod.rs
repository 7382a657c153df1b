//! IAM: what Lifeboat asks of IAM and what it checks there.
//!
//! - [`document`]: policy documents as canonical values, and the matching
//!   of action patterns.
//! - [`needs`]: the one table of the actions each feature calls, and the
//!   minimal policy Lifeboat's own principal needs (`lifeboat iam policy`).
//! - [`role`]: the managed DR role (`manage_role`): its trust and
//!   permission documents, observation, the plan's `iam_role.ACCOUNT`
//!   change, and apply.
//! - [`check`]: the secured-DR check (`secured`): which principals are
//!   allowed a prohibited action, and its alert.
//!
//! The DR copies themselves live in `dr/`; this folder only sets up and
//! watches the IAM around them.

pub mod check;
pub mod document;
pub mod needs;
pub mod role;
