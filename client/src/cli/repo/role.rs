//! The four top-level TUF roles as the command line and the state file name them.

use serde::{Deserialize, Serialize};
use tough::schema::RoleType;

/// root, targets, snapshot or timestamp.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum TopRole {
    Root,
    Targets,
    Snapshot,
    Timestamp,
}

impl TopRole {
    pub const ALL: [TopRole; 4] = [
        TopRole::Root,
        TopRole::Targets,
        TopRole::Snapshot,
        TopRole::Timestamp,
    ];

    /// The role's name in TUF metadata and in tufkeyd.
    pub fn name(self) -> &'static str {
        match self {
            TopRole::Root => "root",
            TopRole::Targets => "targets",
            TopRole::Snapshot => "snapshot",
            TopRole::Timestamp => "timestamp",
        }
    }

    /// The role by name, for `ROLE=VALUE` options.
    pub fn parse(name: &str) -> Option<TopRole> {
        TopRole::ALL.into_iter().find(|role| role.name() == name)
    }

    /// tough's name for the role.
    pub fn role_type(self) -> RoleType {
        match self {
            TopRole::Root => RoleType::Root,
            TopRole::Targets => RoleType::Targets,
            TopRole::Snapshot => RoleType::Snapshot,
            TopRole::Timestamp => RoleType::Timestamp,
        }
    }

    /// How long the role's metadata lives by default, in days.
    pub fn default_expiry_days(self) -> u32 {
        match self {
            TopRole::Root => 365,
            TopRole::Targets => 90,
            TopRole::Snapshot => 7,
            TopRole::Timestamp => 1,
        }
    }
}

impl std::fmt::Display for TopRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
