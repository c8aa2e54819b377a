//! Publishing and claiming one-time keys.

use axum::extract::State;
use axum::Json;
use backchannel_protocol::api::{
    ClaimRequest, ClaimResponse, KeyJson, UploadKeysRequest, UploadKeysResponse,
};
use backchannel_protocol::{b64, Handle, SignedKey};

use crate::app::{ApiJson, Caller, Relay};
use crate::error::ApiError;
use crate::rate::ClientIp;

/// Most one-time keys in one upload.
pub const KEYS_PER_UPLOAD_MAX: usize = 100;

pub(crate) async fn upload(
    State(relay): State<Relay>,
    Caller(caller): Caller,
    ApiJson(req): ApiJson<UploadKeysRequest>,
) -> Result<Json<UploadKeysResponse>, ApiError> {
    if req.one_time_keys.len() > KEYS_PER_UPLOAD_MAX {
        return Err(ApiError::limit(format!(
            "{} one-time keys in one upload; at most {KEYS_PER_UPLOAD_MAX}",
            req.one_time_keys.len()
        )));
    }
    let h = caller.clone();
    let Some(owner) = relay.run(move |s| s.principal(&h)).await? else {
        return Err(ApiError::unknown_principal(caller.as_str()));
    };
    // Every key is checked (signature by the caller's identity, not of low
    // order) before anything is stored.
    let decode = |k: &KeyJson, fallback: bool| -> Result<SignedKey, ApiError> {
        let key = k.to_signed(fallback)?;
        key.verify(&owner.keys)?;
        Ok(key)
    };
    let one_time = req
        .one_time_keys
        .iter()
        .map(|k| decode(k, false))
        .collect::<Result<Vec<_>, _>>()?;
    let fallback = req
        .fallback_key
        .as_ref()
        .map(|k| decode(k, true))
        .transpose()?;
    let counts = relay
        .run(move |s| s.upload_keys(&caller, &one_time, fallback.as_ref(), req.replace))
        .await?;
    Ok(Json(UploadKeysResponse {
        one_time_key_count: counts.one_time_keys,
        has_fallback_key: counts.has_fallback,
        key_version: counts.key_version,
    }))
}

pub(crate) async fn claim(
    State(relay): State<Relay>,
    Caller(caller): Caller,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<ClaimRequest>,
) -> Result<Json<ClaimResponse>, ApiError> {
    let handle = Handle::new(req.handle.as_str())?;
    let c = relay.config();
    relay
        .limit(&[
            (format!("claims/principal:{caller}"), c.claims_per_principal),
            (format!("claims/ip:{ip}"), c.claims_per_ip),
        ])
        .await?;
    // Past the target's limit its fallback key is served, so a drainer
    // cannot keep everyone else from reaching it.
    let one_time = relay
        .within(
            format!("one-time-claims/target:{handle}"),
            c.one_time_claims_per_target,
        )
        .await?;
    let h = handle.clone();
    let Some(owner) = relay.run(move |s| s.principal(&h)).await? else {
        return Err(ApiError::unknown_principal(handle.as_str()));
    };
    let h = handle.clone();
    let Some(claimed) = relay.run(move |s| s.claim_key(&h, one_time)).await? else {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            "no_keys",
            format!("{handle} has published no one-time key and no fallback key: ask them to run the client once"),
        ));
    };
    Ok(Json(ClaimResponse {
        handle: handle.to_string(),
        curve25519: b64::encode(owner.keys.curve25519),
        ed25519: b64::encode(owner.keys.ed25519),
        one_time_key: KeyJson::from_signed(&claimed.key),
        fallback: claimed.key.fallback,
        key_version: claimed.key_version,
    }))
}
