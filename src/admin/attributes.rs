//! /organizations/{org}/attributes: the organization's custom attributes (name, JSON type, the
//! scope that releases it), and the `attributes` member of user bodies that sets their values.
//! The rules are protocol/attributes.rs; this module reads bodies and answers.

use serde_json::{Map, Value, json};
use worker::Request;

use crate::admin::error::ApiError;
use crate::admin::fields::{Fields, Patch};
use crate::admin::{Failure, Outcome, body, created, no_content, organizations};
use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::store::attributes::{self as store, Definition, ValueWrite};
use crate::edge::store::database::Db;
use crate::protocol::attributes::{
    ATTRIBUTE_SCOPES, AttributeType, MAX_DESCRIPTION, TYPES, UserAttribute, check_name,
};

pub const FIELDS: &[&str] = &["name", "type", "scope", "description"];

fn scope(field: &str, value: &str) -> Result<String, ApiError> {
    if ATTRIBUTE_SCOPES.contains(&value) {
        Ok(value.to_string())
    } else {
        Err(ApiError::invalid_field(
            field,
            format!("{field} must be one of {}", ATTRIBUTE_SCOPES.join(", ")),
        ))
    }
}

fn description(value: &str) -> Result<String, ApiError> {
    if value.chars().count() > MAX_DESCRIPTION || value.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            "description",
            format!(
                "description must be at most {MAX_DESCRIPTION} characters, without control characters"
            ),
        ));
    }
    Ok(value.to_string())
}

/// A new definition from a create body. Pure.
pub fn definition(fields: &Fields, now: i64) -> Result<Definition, ApiError> {
    let name = fields.required_string("name")?;
    check_name(&name).map_err(|why| ApiError::invalid_field("name", format!("name: {why}")))?;
    let kind = fields.required_string("type")?;
    if AttributeType::parse(&kind).is_none() {
        return Err(ApiError::invalid_field(
            "type",
            format!("type must be one of {}", TYPES.join(", ")),
        ));
    }
    Ok(Definition {
        name,
        kind,
        scope: scope("scope", &fields.required_string("scope")?)?,
        description: fields
            .string("description")?
            .map(|d| description(&d))
            .transpose()?,
        created_at: now,
        updated_at: now,
    })
}

/// What a PATCH changes: the scope and the description. The name and the type are fixed (a
/// renamed attribute would be a different claim to every relying party; a new type would leave
/// stored values of the old one): sending them is accepted only unchanged. Pure.
pub fn changes(
    fields: &Fields,
    current: &Definition,
) -> Result<(Option<String>, Option<Option<String>>), ApiError> {
    for (field, now) in [("name", &current.name), ("type", &current.kind)] {
        if let Some(sent) = fields.string(field)?
            && &sent != now
        {
            return Err(ApiError::invalid_field(
                field,
                format!("an attribute's {field} cannot be changed; delete it and define a new one"),
            ));
        }
    }
    let scope = fields
        .string("scope")?
        .map(|s| scope("scope", &s))
        .transpose()?;
    let description = match fields.string_patch("description")? {
        Patch::Absent => None,
        Patch::Null => Some(None),
        Patch::Set(d) => Some(Some(description(&d)?)),
    };
    Ok((scope, description))
}

/// The writes an `attributes` member of a user body asks for, each checked against its
/// definition: an unknown name or a value of the wrong type refuses the whole body (nothing is
/// stored), naming the attribute; `null` removes a value. Pure.
pub fn value_writes(member: &Value, defined: &[Definition]) -> Result<Vec<ValueWrite>, ApiError> {
    let Value::Object(values) = member else {
        return Err(ApiError::invalid_field(
            "attributes",
            "attributes must be an object of attribute names to values",
        ));
    };
    let mut writes = Vec::with_capacity(values.len());
    for (name, value) in values {
        let field = format!("attributes.{name}");
        // Names are unique ignoring case; the stored spelling is the one released.
        let Some(def) = defined.iter().find(|d| d.name.eq_ignore_ascii_case(name)) else {
            return Err(ApiError::invalid_field(
                &field,
                format!("unknown attribute {name}: define it first (GET …/attributes lists them)"),
            ));
        };
        if value.is_null() {
            writes.push(ValueWrite::Remove {
                name: def.name.clone(),
            });
            continue;
        }
        let kind = AttributeType::parse(&def.kind).unwrap_or(AttributeType::String);
        kind.check(value)
            .map_err(|why| ApiError::invalid_field(&field, format!("{field} must be {why}")))?;
        writes.push(ValueWrite::Set {
            name: def.name.clone(),
            kind: def.kind.clone(),
            value: kind.normalize(value.clone()),
        });
    }
    Ok(writes)
}

/// The `attributes` member of a user body, checked against the organization's definitions (read
/// at the primary); none when the body has no such member.
pub async fn read_value_writes(
    db: &Db,
    org: &str,
    fields: &Fields,
) -> Result<Vec<ValueWrite>, Failure> {
    let Some(member) = fields.value("attributes") else {
        if fields.has("attributes") {
            return Err(ApiError::invalid_field(
                "attributes",
                "attributes must be an object (null removes one value, not all)",
            )
            .into());
        }
        return Ok(Vec::new());
    };
    let defined = store::list(db, org).await?;
    Ok(value_writes(member, &defined)?)
}

/// The user's values as the admin API shows them: `{name: value}`.
pub fn view(values: &[UserAttribute]) -> Map<String, Value> {
    values
        .iter()
        .map(|a| (a.name.clone(), a.value.clone()))
        .collect()
}

fn taken(name: &str) -> Failure {
    ApiError::conflict(
        "name",
        format!("an attribute named {name} already exists (names are compared ignoring case)"),
    )
    .into()
}

async fn require(db: &Db, org: &str, name: &str) -> Result<Definition, Failure> {
    organizations::require(db, org).await?;
    store::get(db, org, name)
        .await?
        .ok_or_else(|| ApiError::not_found("attribute").into())
}

/// POST {"name", "type", "scope", "description"?} → 201 with the attribute.
pub async fn create(req: &mut Request, ctx: &Ctx, org: &str) -> Outcome {
    let fields = body::read(req, ctx, FIELDS).await?;
    let def = definition(&fields, ctx.now)?;
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    match store::insert(&db, org, &def).await {
        Ok(true) => {}
        Ok(false) => {
            return Err(ApiError::conflict(
                "name",
                format!(
                    "{org} already defines {} attributes, the most an organization may have",
                    crate::protocol::attributes::MAX_ATTRIBUTES
                ),
            )
            .into());
        }
        Err(e) if crate::edge::store::d1::is_unique_violation(&e) => return Err(taken(&def.name)),
        Err(e) => return Err(e.into()),
    }
    // Discovery lists the names with the cached organization: this isolate sees the change at
    // once, the others within the cache's lifetime.
    crate::oidc::request::forget_organization(org);
    created(
        &format!("/api/v1/organizations/{org}/attributes/{}", def.name),
        &def,
    )
}

pub async fn list(ctx: &Ctx, org: &str) -> Outcome {
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    let attributes = store::list(&db, org).await?;
    Ok(http::json(200, &json!({ "attributes": attributes }))?)
}

pub async fn get(ctx: &Ctx, org: &str, name: &str) -> Outcome {
    Ok(http::json(
        200,
        &require(&ctx.primary()?, org, name).await?,
    )?)
}

/// PATCH {"scope"?, "description"?} → 200 with the attribute.
pub async fn update(req: &mut Request, ctx: &Ctx, org: &str, name: &str) -> Outcome {
    let fields = body::read(req, ctx, FIELDS).await?;
    let db = ctx.primary()?;
    let current = require(&db, org, name).await?;
    let (scope, description) = changes(&fields, &current)?;
    let updated = store::update(
        &db,
        org,
        &current.name,
        scope.as_deref(),
        description.as_ref().map(|d| d.as_deref()),
        ctx.now,
    )
    .await?
    .ok_or_else(|| ApiError::not_found("attribute"))?;
    Ok(http::json(200, &updated)?)
}

/// DELETE → 204; every user's value goes with it.
pub async fn delete(ctx: &Ctx, org: &str, name: &str) -> Outcome {
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    if !store::delete(&db, org, name).await? {
        return Err(ApiError::not_found("attribute").into());
    }
    crate::oidc::request::forget_organization(org);
    no_content()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(v: Value) -> Fields {
        Fields::new(v, FIELDS).unwrap()
    }

    fn def(name: &str, kind: &str) -> Definition {
        Definition {
            name: name.into(),
            kind: kind.into(),
            scope: "profile".into(),
            description: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn a_definition_needs_a_free_name_a_type_and_a_supported_scope() {
        let d = definition(
            &fields(json!({"name": "department", "type": "string", "scope": "profile"})),
            7,
        )
        .unwrap();
        assert_eq!((d.kind.as_str(), d.scope.as_str()), ("string", "profile"));
        for (body, field) in [
            (
                json!({"name": "sub", "type": "string", "scope": "profile"}),
                "name",
            ),
            (
                json!({"name": "groups", "type": "string", "scope": "profile"}),
                "name",
            ),
            (
                json!({"name": "a b", "type": "string", "scope": "profile"}),
                "name",
            ),
            (
                json!({"name": "x", "type": "object", "scope": "profile"}),
                "type",
            ),
            (
                json!({"name": "x", "type": "string", "scope": "hr"}),
                "scope",
            ),
            (
                json!({"name": "x", "type": "string", "scope": "openid"}),
                "scope",
            ),
            (
                json!({"name": "x", "type": "string", "scope": "offline_access"}),
                "scope",
            ),
            (json!({"type": "string", "scope": "profile"}), "name"),
            (json!({"name": "x", "scope": "profile"}), "type"),
        ] {
            let err = definition(&fields(body.clone()), 0).unwrap_err();
            assert_eq!(err.field.as_deref(), Some(field), "{body}");
            assert_eq!(err.status, 400);
        }
    }

    #[test]
    fn a_patch_changes_scope_and_description_only() {
        let current = def("department", "string");
        let (scope, description) = changes(
            &fields(json!({"scope": "email", "description": null})),
            &current,
        )
        .unwrap();
        assert_eq!((scope.as_deref(), description), (Some("email"), Some(None)));
        assert!(changes(&fields(json!({"type": "string"})), &current).is_ok());
        for body in [json!({"type": "integer"}), json!({"name": "dept"})] {
            assert!(changes(&fields(body), &current).is_err());
        }
    }

    #[test]
    fn values_are_checked_and_unknown_names_refused() {
        let defined = vec![
            def("department", "string"),
            def("employee_number", "integer"),
        ];
        let writes = value_writes(
            &json!({"Department": "R&D", "employee_number": null}),
            &defined,
        )
        .unwrap();
        assert!(matches!(&writes[0], ValueWrite::Set { name, .. } if name == "department"));
        assert!(matches!(&writes[1], ValueWrite::Remove { name } if name == "employee_number"));
        let err = value_writes(&json!({"shoe_size": 44}), &defined).unwrap_err();
        assert_eq!(err.field.as_deref(), Some("attributes.shoe_size"));
        assert!(err.description.contains("shoe_size"));
        let err = value_writes(
            &json!({"department": "ok", "employee_number": "4711"}),
            &defined,
        )
        .unwrap_err();
        assert_eq!(err.field.as_deref(), Some("attributes.employee_number"));
        assert!(value_writes(&json!(["department"]), &defined).is_err());
    }
}
