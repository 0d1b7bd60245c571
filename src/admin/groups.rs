//! /organizations/{org}/groups: create, list, read, rename and delete groups, and manage their
//! members. A group is addressed by its name (ignoring case, as names are unique that way);
//! memberships, role maps and client restrictions refer to its internal id, so a rename keeps
//! them all.

use worker::Request;

use crate::admin::error::ApiError;
use crate::admin::{Failure, Outcome, body, created, no_content, organizations, users, validate};
use crate::edge::context::Ctx;
use crate::edge::http;
use crate::edge::store::database::Db;
use crate::edge::store::{self, groups::Group};

/// `grp_` + 128 random bits; never shown (the API speaks names).
fn new_id() -> String {
    format!(
        "grp_{}",
        crate::crypto::b64url(&crate::crypto::random_bytes::<16>())
    )
}

fn taken(name: &str) -> Failure {
    ApiError::conflict(
        "name",
        format!("a group named {name} already exists (names are compared ignoring case)"),
    )
    .into()
}

async fn require(db: &Db, org: &str, name: &str) -> Result<Group, Failure> {
    organizations::require(db, org).await?;
    store::groups::get_group(db, org, name)
        .await?
        .ok_or_else(|| ApiError::not_found("group").into())
}

/// POST {"name"} → 201 with the group.
pub async fn create(req: &mut Request, ctx: &Ctx, org: &str) -> Outcome {
    let fields = body::read(req, ctx, &["name"]).await?;
    let name = validate::group_name("name", &fields.required_string("name")?)?;
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    match store::groups::insert_group(&db, &new_id(), org, &name, ctx.now).await {
        Ok(()) => {}
        Err(e) if store::d1::is_unique_violation(&e) => return Err(taken(&name)),
        Err(e) => return Err(e.into()),
    }
    let group = require(&db, org, &name).await?;
    created(
        &format!("/api/v1/organizations/{org}/groups/{name}"),
        &group,
    )
}

pub async fn list(ctx: &Ctx, org: &str) -> Outcome {
    let db = ctx.primary()?;
    organizations::require(&db, org).await?;
    let groups = store::groups::list_groups(&db, org).await?;
    Ok(http::json(200, &serde_json::json!({ "groups": groups }))?)
}

pub async fn get(ctx: &Ctx, org: &str, name: &str) -> Outcome {
    Ok(http::json(
        200,
        &require(&ctx.primary()?, org, name).await?,
    )?)
}

/// PATCH {"name"}: rename. Members, role maps and restrictions follow.
pub async fn update(req: &mut Request, ctx: &Ctx, org: &str, name: &str) -> Outcome {
    let fields = body::read(req, ctx, &["name"]).await?;
    let db = ctx.primary()?;
    require(&db, org, name).await?;
    let Some(new_name) = fields.string("name")? else {
        return Ok(http::json(200, &require(&db, org, name).await?)?);
    };
    let new_name = validate::group_name("name", &new_name)?;
    match store::groups::rename_group(&db, org, name, &new_name, ctx.now).await {
        Ok(true) => {}
        Ok(false) => return Err(ApiError::not_found("group").into()),
        Err(e) if store::d1::is_unique_violation(&e) => return Err(taken(&new_name)),
        Err(e) => return Err(e.into()),
    }
    Ok(http::json(200, &require(&db, org, &new_name).await?)?)
}

/// DELETE → 204; memberships and role mappings go with it. A group a client is restricted to
/// cannot be deleted (409): that would open the client to everyone. Nor can a group an upstream
/// connection names in its default groups or group mapping (409 naming the connections): its
/// sign-ins would silently stop granting it.
pub async fn delete(ctx: &Ctx, org: &str, name: &str) -> Outcome {
    let db = ctx.primary()?;
    require(&db, org, name).await?;
    match store::groups::delete_group(&db, org, name).await {
        Ok(true) => no_content(),
        Ok(false) => Err(ApiError::not_found("group").into()),
        Err(e) if store::d1::is_foreign_key_violation(&e) => {
            let clients = store::groups::clients_restricted_to(&db, org, name).await?;
            let connections = store::connections::naming_group(&db, org, name).await?;
            let mut uses = Vec::new();
            if !clients.is_empty() {
                uses.push(format!(
                    "clients {} admit only this group (allowed_groups)",
                    clients.join(", ")
                ));
            }
            if !connections.is_empty() {
                uses.push(format!(
                    "connections {} name it (default_groups or group_mapping)",
                    connections.join(", ")
                ));
            }
            Err(ApiError::new(
                409,
                "conflict",
                format!("{}; remove it from them first", uses.join(" and ")),
            )
            .into())
        }
        Err(e) => Err(e.into()),
    }
}

/// GET …/members: the users in the group, paginated like the user list.
pub async fn members(req: &Request, ctx: &Ctx, org: &str, name: &str) -> Outcome {
    let group = require(&ctx.primary()?, org, name).await?;
    users::list_filtered(req, ctx, org, Some(group.name), "members").await
}

/// PUT …/members/{user_id} → 204, whether or not the user was a member already.
pub async fn add_member(ctx: &Ctx, org: &str, name: &str, user_id: &str) -> Outcome {
    let db = ctx.primary()?;
    require(&db, org, name).await?;
    if !store::groups::add_member(&db, org, name, user_id, ctx.now).await? {
        // The group exists (checked above, and a concurrent delete would also land here).
        return Err(ApiError::not_found("user").into());
    }
    no_content()
}

/// DELETE …/members/{user_id} → 204; 404 when the user is not a member.
pub async fn remove_member(ctx: &Ctx, org: &str, name: &str, user_id: &str) -> Outcome {
    let db = ctx.primary()?;
    require(&db, org, name).await?;
    if !store::groups::remove_member(&db, org, name, user_id).await? {
        return Err(ApiError::new(
            404,
            "not_found",
            "no such member: the user is not in this group",
        )
        .into());
    }
    no_content()
}
