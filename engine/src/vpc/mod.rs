//! VPCs: capture a region's network as versioned documents, export a
//! captured VPC as a CloudFormation template, and deploy it as a clone.

pub mod capture;
pub mod clone;
pub mod document;
pub mod export;
