//! Logins and access tokens of the BMS sandbox: password grant, refresh, expiry.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::seed::{SeedUser, Settings};

/// A granted token pair and when each stops working (wall clock, for the answer).
#[derive(Clone, Debug, PartialEq)]
pub struct Grant {
    pub access: String,
    pub refresh: String,
    pub access_expire_on: DateTime<Utc>,
    pub refresh_expire_on: DateTime<Utc>,
}

struct Session {
    user: String,
    refresh: String,
    expires: Instant,
    refresh_expires: Instant,
}

/// Why a login or refresh was refused (the sandbox answers these with HTTP 200, `success:false`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginError {
    MissingField(&'static str),
    UnsupportedGrant(String),
    BadCredentials,
    BadRefresh,
}

impl LoginError {
    pub fn message(&self) -> String {
        match self {
            LoginError::MissingField(f) => format!("'{f}' is required."),
            LoginError::UnsupportedGrant(g) => format!("Grant type '{g}' is not supported."),
            LoginError::BadCredentials => "Invalid username, password or tenant.".to_string(),
            LoginError::BadRefresh => "Invalid or expired refresh token.".to_string(),
        }
    }
}

#[derive(Default)]
pub struct Sessions {
    by_access: HashMap<String, Session>,
}

impl Sessions {
    /// Password grant. `form` keys are lowercased by the caller.
    pub fn login(
        &mut self,
        tenant: &str,
        users: &[SeedUser],
        settings: &Settings,
        form: &HashMap<String, String>,
        now: Instant,
    ) -> Result<Grant, LoginError> {
        let field = |k: &'static str| form.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
        let grant = field("granttype").ok_or(LoginError::MissingField("GrantType"))?;
        if !grant.eq_ignore_ascii_case("password") {
            return Err(LoginError::UnsupportedGrant(grant.to_string()));
        }
        let user = field("username").ok_or(LoginError::MissingField("UserName"))?;
        let password = form.get("password").map(String::as_str).unwrap_or("");
        let tenant_given = field("tenant").ok_or(LoginError::MissingField("Tenant"))?;
        let ok = tenant_given.eq_ignore_ascii_case(tenant.trim())
            && users
                .iter()
                .any(|u| u.user_name.eq_ignore_ascii_case(user) && u.password == password);
        if !ok {
            return Err(LoginError::BadCredentials);
        }
        Ok(self.grant(user.to_string(), settings, now))
    }

    /// Refresh grant: the old access token (expired or not) and its refresh token.
    pub fn refresh(
        &mut self,
        settings: &Settings,
        form: &HashMap<String, String>,
        now: Instant,
    ) -> Result<Grant, LoginError> {
        let access = form
            .get("accesstoken")
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .ok_or(LoginError::MissingField("AccessToken"))?;
        let refresh = form.get("refreshtoken").map(|s| s.trim()).unwrap_or("");
        let valid = self
            .by_access
            .get(access)
            .is_some_and(|s| s.refresh == refresh && s.refresh_expires > now);
        if !valid {
            return Err(LoginError::BadRefresh);
        }
        let old = self
            .by_access
            .remove(access)
            .ok_or(LoginError::BadRefresh)?;
        Ok(self.grant(old.user, settings, now))
    }

    /// Whether a bearer token is known and not expired.
    pub fn authorized(&self, access: &str, now: Instant) -> bool {
        self.by_access.get(access).is_some_and(|s| s.expires > now)
    }

    /// Makes every access token expire now (refresh tokens stay good).
    pub fn expire_all(&mut self, now: Instant) {
        for s in self.by_access.values_mut() {
            s.expires = now;
        }
    }

    pub fn clear(&mut self) {
        self.by_access.clear();
    }

    pub fn len(&self) -> usize {
        self.by_access.len()
    }

    fn grant(&mut self, user: String, settings: &Settings, now: Instant) -> Grant {
        let life = Duration::from_secs(settings.access_token_seconds);
        let refresh_life = Duration::from_secs(settings.refresh_token_seconds);
        let access = random_token();
        let refresh = random_token();
        self.by_access.insert(
            access.clone(),
            Session {
                user,
                refresh: refresh.clone(),
                expires: now + life,
                refresh_expires: now + refresh_life,
            },
        );
        let wall = Utc::now();
        Grant {
            access,
            refresh,
            access_expire_on: wall + chrono::Duration::from_std(life).unwrap_or_default(),
            refresh_expire_on: wall + chrono::Duration::from_std(refresh_life).unwrap_or_default(),
        }
    }
}

fn random_token() -> String {
    let bytes: [u8; 24] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect()
    }

    fn users() -> Vec<SeedUser> {
        vec![SeedUser {
            user_name: "demo-api".into(),
            password: "demo-password".into(),
            full_name: None,
        }]
    }

    #[test]
    fn login_checks_grant_user_password_and_tenant() {
        let s = Settings::default();
        let now = Instant::now();
        let ok = [
            ("GrantType", "password"),
            ("UserName", "Demo-API"),
            ("Password", "demo-password"),
            ("Tenant", "DEMO"),
        ];
        type Row<'a> = (Vec<(&'a str, &'a str)>, Result<(), LoginError>);
        let table: Vec<Row> = vec![
            (ok.to_vec(), Ok(())),
            (ok[1..].to_vec(), Err(LoginError::MissingField("GrantType"))),
            (
                vec![ok[0], ok[1], ok[2]],
                Err(LoginError::MissingField("Tenant")),
            ),
            (
                vec![ok[0], ok[1], ("Password", "wrong"), ok[3]],
                Err(LoginError::BadCredentials),
            ),
            (
                vec![ok[0], ok[1], ok[2], ("Tenant", "other")],
                Err(LoginError::BadCredentials),
            ),
            (
                vec![("GrantType", "client_credentials"), ok[1], ok[2], ok[3]],
                Err(LoginError::UnsupportedGrant("client_credentials".into())),
            ),
        ];
        for (pairs, want) in table {
            let mut sessions = Sessions::default();
            let got = sessions
                .login("demo", &users(), &s, &form(&pairs), now)
                .map(|_| ());
            assert_eq!(got, want, "{pairs:?}");
        }
    }

    #[test]
    fn tokens_expire_and_refresh_replaces_them() {
        let s = Settings {
            access_token_seconds: 60,
            ..Settings::default()
        };
        let t0 = Instant::now();
        let mut sessions = Sessions::default();
        let f = form(&[
            ("granttype", "password"),
            ("username", "demo-api"),
            ("password", "demo-password"),
            ("tenant", "demo"),
        ]);
        let g = sessions.login("demo", &users(), &s, &f, t0).unwrap();
        assert!(sessions.authorized(&g.access, t0 + Duration::from_secs(59)));
        assert!(!sessions.authorized(&g.access, t0 + Duration::from_secs(60)));
        assert!(!sessions.authorized("made-up", t0));

        let bad = form(&[("accesstoken", &g.access), ("refreshtoken", "nope")]);
        assert_eq!(
            sessions.refresh(&s, &bad, t0).unwrap_err(),
            LoginError::BadRefresh
        );
        let good = form(&[("accesstoken", &g.access), ("refreshtoken", &g.refresh)]);
        let later = t0 + Duration::from_secs(120);
        let g2 = sessions.refresh(&s, &good, later).unwrap();
        assert!(sessions.authorized(&g2.access, later));
        assert!(!sessions.authorized(&g.access, later));
        // A refresh token works once.
        assert!(sessions.refresh(&s, &good, later).is_err());

        sessions.expire_all(later);
        assert!(!sessions.authorized(&g2.access, later));
    }
}
