//! The admin API's route table as data: one entry per method and path template. The dispatcher
//! matches requests against it, and a unit test checks it against `openapi.json` path by path, so
//! the document and the served API cannot drift apart. Pure.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    OpenApi,
    ListOrgs,
    CreateOrg,
    GetOrg,
    UpdateOrg,
    DeleteOrg,
    ListClients,
    CreateClient,
    GetClient,
    ReplaceClient,
    UpdateClient,
    DeleteClient,
    RotateClientSecret,
    ListUsers,
    CreateUser,
    GetUser,
    UpdateUser,
    DeleteUser,
    SetPassword,
    ListKeys,
    RotateKey,
    ListGroups,
    CreateGroup,
    GetGroup,
    UpdateGroup,
    DeleteGroup,
    ListAttributes,
    CreateAttribute,
    GetAttribute,
    UpdateAttribute,
    DeleteAttribute,
    ListConnections,
    CreateConnection,
    GetConnection,
    UpdateConnection,
    DeleteConnection,
    ListUserLinks,
    DeleteUserLink,
    ListMembers,
    AddMember,
    RemoveMember,
    UnlockUser,
    ResetMfa,
    LogoutUser,
    SetupLink,
    RecoveryLink,
    ListPasskeys,
    DeletePasskey,
    ListEvents,
    Reseal,
}

pub struct Route {
    pub method: &'static str,
    /// Relative to /api/v1; `{name}` is one path segment.
    pub path: &'static str,
    pub endpoint: Endpoint,
}

const fn route(method: &'static str, path: &'static str, endpoint: Endpoint) -> Route {
    Route {
        method,
        path,
        endpoint,
    }
}

use Endpoint::*;

pub const ROUTES: &[Route] = &[
    route("GET", "/openapi.json", OpenApi),
    route("GET", "/organizations", ListOrgs),
    route("POST", "/organizations", CreateOrg),
    route("GET", "/organizations/{org}", GetOrg),
    route("PATCH", "/organizations/{org}", UpdateOrg),
    route("DELETE", "/organizations/{org}", DeleteOrg),
    route("GET", "/organizations/{org}/clients", ListClients),
    route("POST", "/organizations/{org}/clients", CreateClient),
    route("GET", "/organizations/{org}/clients/{client_id}", GetClient),
    route(
        "PUT",
        "/organizations/{org}/clients/{client_id}",
        ReplaceClient,
    ),
    route(
        "PATCH",
        "/organizations/{org}/clients/{client_id}",
        UpdateClient,
    ),
    route(
        "DELETE",
        "/organizations/{org}/clients/{client_id}",
        DeleteClient,
    ),
    route(
        "POST",
        "/organizations/{org}/clients/{client_id}/secret",
        RotateClientSecret,
    ),
    route("GET", "/organizations/{org}/users", ListUsers),
    route("POST", "/organizations/{org}/users", CreateUser),
    route("GET", "/organizations/{org}/users/{user_id}", GetUser),
    route("PATCH", "/organizations/{org}/users/{user_id}", UpdateUser),
    route("DELETE", "/organizations/{org}/users/{user_id}", DeleteUser),
    route(
        "PUT",
        "/organizations/{org}/users/{user_id}/password",
        SetPassword,
    ),
    route("GET", "/organizations/{org}/groups", ListGroups),
    route("POST", "/organizations/{org}/groups", CreateGroup),
    route("GET", "/organizations/{org}/groups/{group}", GetGroup),
    route("PATCH", "/organizations/{org}/groups/{group}", UpdateGroup),
    route("DELETE", "/organizations/{org}/groups/{group}", DeleteGroup),
    route("GET", "/organizations/{org}/attributes", ListAttributes),
    route("POST", "/organizations/{org}/attributes", CreateAttribute),
    route(
        "GET",
        "/organizations/{org}/attributes/{name}",
        GetAttribute,
    ),
    route(
        "PATCH",
        "/organizations/{org}/attributes/{name}",
        UpdateAttribute,
    ),
    route(
        "DELETE",
        "/organizations/{org}/attributes/{name}",
        DeleteAttribute,
    ),
    route("GET", "/organizations/{org}/connections", ListConnections),
    route("POST", "/organizations/{org}/connections", CreateConnection),
    route(
        "GET",
        "/organizations/{org}/connections/{connection_id}",
        GetConnection,
    ),
    route(
        "PATCH",
        "/organizations/{org}/connections/{connection_id}",
        UpdateConnection,
    ),
    route(
        "DELETE",
        "/organizations/{org}/connections/{connection_id}",
        DeleteConnection,
    ),
    route(
        "GET",
        "/organizations/{org}/users/{user_id}/links",
        ListUserLinks,
    ),
    route(
        "DELETE",
        "/organizations/{org}/users/{user_id}/links/{connection_id}",
        DeleteUserLink,
    ),
    route(
        "GET",
        "/organizations/{org}/groups/{group}/members",
        ListMembers,
    ),
    route(
        "PUT",
        "/organizations/{org}/groups/{group}/members/{user_id}",
        AddMember,
    ),
    route(
        "DELETE",
        "/organizations/{org}/groups/{group}/members/{user_id}",
        RemoveMember,
    ),
    route(
        "DELETE",
        "/organizations/{org}/users/{user_id}/lock",
        UnlockUser,
    ),
    route(
        "DELETE",
        "/organizations/{org}/users/{user_id}/mfa",
        ResetMfa,
    ),
    route(
        "POST",
        "/organizations/{org}/users/{user_id}/logout",
        LogoutUser,
    ),
    route(
        "POST",
        "/organizations/{org}/users/{user_id}/setup-link",
        SetupLink,
    ),
    route(
        "POST",
        "/organizations/{org}/users/{user_id}/recovery-link",
        RecoveryLink,
    ),
    route(
        "GET",
        "/organizations/{org}/users/{user_id}/passkeys",
        ListPasskeys,
    ),
    route(
        "DELETE",
        "/organizations/{org}/users/{user_id}/passkeys/{passkey_id}",
        DeletePasskey,
    ),
    route("GET", "/organizations/{org}/events", ListEvents),
    route("GET", "/organizations/{org}/keys", ListKeys),
    route("POST", "/organizations/{org}/keys/rotate", RotateKey),
    route("POST", "/maintenance/reseal", Reseal),
];

#[derive(Debug, PartialEq, Eq)]
pub enum Matched<'a> {
    /// The endpoint and the values of the template's `{…}` segments, in order.
    Found(Endpoint, Vec<&'a str>),
    /// The path exists but not with this method: the value of the Allow header.
    MethodNotAllowed(String),
    NotFound,
}

/// The `{…}` values when `segments` fit `template`.
fn fit<'a>(template: &str, segments: &[&'a str]) -> Option<Vec<&'a str>> {
    let parts: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (part, segment) in parts.iter().zip(segments) {
        if part.starts_with('{') {
            if segment.is_empty() {
                return None;
            }
            params.push(*segment);
        } else if part != segment {
            return None;
        }
    }
    Some(params)
}

pub fn find<'a>(method: &str, segments: &[&'a str]) -> Matched<'a> {
    let mut allow: Vec<&str> = Vec::new();
    for r in ROUTES {
        if let Some(params) = fit(r.path, segments) {
            if r.method == method {
                return Matched::Found(r.endpoint, params);
            }
            allow.push(r.method);
        }
    }
    if allow.is_empty() {
        Matched::NotFound
    } else {
        Matched::MethodNotAllowed(allow.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn matches_templates_and_captures_segments() {
        assert_eq!(
            find("POST", &["organizations", "acme", "clients"]),
            Matched::Found(CreateClient, vec!["acme"])
        );
        assert_eq!(
            find(
                "POST",
                &["organizations", "acme", "clients", "rocketchat", "secret"]
            ),
            Matched::Found(RotateClientSecret, vec!["acme", "rocketchat"])
        );
        assert_eq!(
            find("GET", &["organizations"]),
            Matched::Found(ListOrgs, vec![])
        );
        assert_eq!(
            find("GET", &["organizations", "acme", "nope"]),
            Matched::NotFound
        );
        assert_eq!(
            find("GET", &["organizations", "", "clients"]),
            Matched::NotFound
        );
        assert_eq!(find("GET", &[]), Matched::NotFound);
    }

    #[test]
    fn wrong_methods_list_the_allowed_ones() {
        assert_eq!(
            find("PUT", &["organizations", "acme"]),
            Matched::MethodNotAllowed("GET, PATCH, DELETE".into())
        );
        assert_eq!(
            find("GET", &["organizations", "acme", "keys", "rotate"]),
            Matched::MethodNotAllowed("POST".into())
        );
    }

    #[test]
    fn no_two_routes_share_method_and_path() {
        let mut seen = BTreeSet::new();
        for r in ROUTES {
            assert!(
                seen.insert((r.method, r.path)),
                "{} {} twice",
                r.method,
                r.path
            );
        }
    }

    /// Every route served is documented in openapi.json, and every documented operation is served.
    #[test]
    fn route_table_and_openapi_document_agree() {
        let doc: serde_json::Value = serde_json::from_str(crate::admin::OPENAPI).unwrap();
        assert_eq!(doc["openapi"].as_str().unwrap().get(..3), Some("3.1"));
        let methods = [
            "get", "put", "post", "delete", "patch", "head", "options", "trace",
        ];
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (key, _) in item.as_object().unwrap() {
                if methods.contains(&key.as_str()) {
                    documented.insert((key.to_uppercase(), path.clone()));
                }
            }
        }
        let served: BTreeSet<(String, String)> = ROUTES
            .iter()
            .map(|r| (r.method.to_string(), r.path.to_string()))
            .collect();
        assert_eq!(
            served.difference(&documented).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "served but not documented"
        );
        assert_eq!(
            documented.difference(&served).collect::<Vec<_>>(),
            Vec::<&(String, String)>::new(),
            "documented but not served"
        );
    }
}
