//! Users, roles, apps, API keys, JWT and audit (the security issue). Empty until then.
