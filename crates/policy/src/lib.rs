//! AWS IoT policy documents for Thingport: parsing, validation with precise
//! errors, policy variables, conditions, compilation and fast evaluation.
//!
//! This crate is pure: strings in, decisions out. The broker parses a policy
//! when it is created ([`PolicyDocument::parse`]), compiles the policies
//! attached to a principal once per connection with that connection's
//! [`Variables`] ([`CompiledPolicies::compile`]), and asks
//! [`CompiledPolicies::evaluate`] before every action.
//!
//! ```
//! use std::collections::HashMap;
//! use policy::{CompiledPolicies, Decision, NoRequestContext, ParseOptions, PolicyDocument, VarValue};
//!
//! let doc = PolicyDocument::parse(r#"{
//!   "Version": "2012-10-17",
//!   "Statement": [{
//!     "Effect": "Allow",
//!     "Action": "iot:Publish",
//!     "Resource": "arn:aws:iot:eu-west-1:123456789012:topic/${iot:Connection.Thing.ThingName}/*"
//!   }]
//! }"#, &ParseOptions::default()).unwrap();
//!
//! let mut vars = HashMap::new();
//! vars.insert("iot:Connection.Thing.ThingName".to_string(), VarValue::from("lamp-1"));
//! let compiled = CompiledPolicies::compile(&[("fleet".into(), "1".into(), &doc)], &vars);
//!
//! let arn = |t: &str| format!("arn:aws:iot:eu-west-1:123456789012:topic/{t}");
//! assert_eq!(compiled.evaluate("iot:Publish", &arn("lamp-1/state"), &NoRequestContext), Decision::Allowed);
//! assert_eq!(compiled.evaluate("iot:Publish", &arn("lamp-2/state"), &NoRequestContext), Decision::ImplicitDeny);
//! ```
//!
//! Decisions taken where AWS leaves room are documented on the modules:
//! [`document`] (Version, strictness), [`variables`] (variable catalogue and
//! certificate values), [`compile`] (missing variables), [`condition`]
//! (operators and missing keys), [`pattern`] (the glob).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod action;
mod cidr;
pub mod compile;
pub mod condition;
mod date;
pub mod document;
mod error;
pub mod eval;
mod json;
pub mod pattern;
mod resource;
mod template;
pub mod variables;

pub use action::KNOWN_ACTIONS;
pub use compile::CompiledPolicies;
pub use document::{Effect, ParseOptions, PolicyDocument, Statement};
pub use error::PolicyError;
pub use eval::{Decision, Explanation, NoRequestContext, RequestContext, StatementRef};
pub use pattern::resource_matches;
pub use variables::{NoVariables, VarValue, Variables};
