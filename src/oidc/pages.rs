//! Turning the organization and a page into an HTML response.

use worker::{Response, Result};

use crate::edge::http;
use crate::edge::store::orgs::Organization;
use crate::protocol::authorize::FatalError;
use crate::ui::{self, Brand, ErrorPage, MessagePage};

pub fn brand(org: &Organization) -> Brand {
    Brand::new(
        &org.name,
        org.logo_url.as_deref(),
        org.primary_color.as_deref(),
    )
}

/// A page for when even the organization is unknown.
pub fn unknown_org() -> Result<Response> {
    let brand = Brand::new("Clavex", None, None);
    http::html(
        404,
        ui::render(&ErrorPage {
            brand: &brand,
            title: "Unknown organization",
            description: "There is no organization at this address. Check the issuer URL configured in the application.",
            code: "not_found",
            redirect_uri: None,
        }),
    )
}

/// An authorization error that must not be redirected (unknown client, unregistered redirect
/// URI, …): shown to the user, with the redirect URI that was sent so an admin can fix it.
pub fn fatal(org: &Organization, err: &FatalError) -> Result<Response> {
    let title = match err.code {
        "error_uri_mismatch" => "This application's redirect URI is not registered",
        "invalid_client" => "Unknown application",
        _ => "The sign-in request is not valid",
    };
    error(
        org,
        400,
        title,
        &err.description,
        err.code,
        err.redirect_uri.as_deref(),
    )
}

pub fn error(
    org: &Organization,
    status: u16,
    title: &str,
    description: &str,
    code: &str,
    redirect_uri: Option<&str>,
) -> Result<Response> {
    let brand = brand(org);
    http::html(
        status,
        ui::render(&ErrorPage {
            brand: &brand,
            title,
            description,
            code,
            redirect_uri,
        }),
    )
}

pub fn message(org: &Organization, title: &str, message: &str) -> Result<Response> {
    let brand = brand(org);
    http::html(
        200,
        ui::render(&MessagePage {
            brand: &brand,
            title,
            message,
        }),
    )
}
