//! Roles, permissions and the authenticated principal, per the seed's authorization matrix:
//!
//! | routes | roles | permission |
//! |---|---|---|
//! | `/api/dashboard/*` | user, admin | `dashboard:read` |
//! | create apps | admin | `apps:write` |
//! | `/api/apps/{id}/*` | user, admin | access to that app |
//! | `/api/analytics/*` | user, admin | `analytics:read` |
//! | `/api/admin/*` | admin | `admin:*` |

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    User,
    Readonly,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::User, Role::Readonly];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::User => "user",
            Role::Readonly => "readonly",
        }
    }

    /// The permissions a role grants by default.
    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::Admin => &[
                DashboardRead,
                AppsRead,
                AppsWrite,
                AnalyticsRead,
                AuditRead,
                AdminAll,
            ],
            Role::User => &[DashboardRead, AppsRead, AnalyticsRead],
            Role::Readonly => &[DashboardRead, AppsRead],
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    DashboardRead,
    AppsRead,
    AppsWrite,
    AnalyticsRead,
    AuditRead,
    AdminAll,
}

impl Permission {
    pub const ALL: [Permission; 6] = [
        Permission::DashboardRead,
        Permission::AppsRead,
        Permission::AppsWrite,
        Permission::AnalyticsRead,
        Permission::AuditRead,
        Permission::AdminAll,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::DashboardRead => "dashboard:read",
            Permission::AppsRead => "apps:read",
            Permission::AppsWrite => "apps:write",
            Permission::AnalyticsRead => "analytics:read",
            Permission::AuditRead => "audit:read",
            Permission::AdminAll => "admin:*",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Who is making a request, as resolved from the store at request time (not from token
/// claims, so disabling a user or revoking a grant takes effect at once).
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub user_id: String,
    pub email: String,
    pub roles: BTreeSet<Role>,
    pub permissions: BTreeSet<Permission>,
    /// `None`: every app (admins).
    pub app_access: Option<BTreeSet<String>>,
    /// The login session (refresh family) the access token belongs to.
    pub session_id: String,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.roles.contains(&Role::Admin)
    }

    pub fn has_any_role(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.roles.contains(r))
    }

    pub fn has(&self, p: Permission) -> bool {
        self.permissions.contains(&p)
    }

    pub fn can_access_app(&self, app_id: &str) -> bool {
        self.app_access.as_ref().is_none_or(|a| a.contains(app_id))
    }
}

/// Effective permissions: the roles' defaults plus the user's extra grants (unknown strings
/// are ignored).
pub fn effective_permissions(roles: &[Role], extra: &[String]) -> BTreeSet<Permission> {
    let mut out: BTreeSet<Permission> = roles
        .iter()
        .flat_map(|r| r.permissions().iter().copied())
        .collect();
    out.extend(extra.iter().filter_map(|s| Permission::parse(s)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_grant_the_matrix_permissions() {
        let user = effective_permissions(&[Role::User], &[]);
        assert!(user.contains(&Permission::AnalyticsRead));
        assert!(!user.contains(&Permission::AppsWrite));
        assert!(!user.contains(&Permission::AdminAll));
        let ro = effective_permissions(&[Role::Readonly], &["apps:write".into(), "bogus".into()]);
        assert!(ro.contains(&Permission::AppsWrite));
        assert!(!ro.contains(&Permission::AnalyticsRead));
        assert_eq!(
            effective_permissions(&[Role::Admin], &[]).len(),
            Permission::ALL.len()
        );
    }
}
