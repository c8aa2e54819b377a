//! Registration and challenge/response login.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use backchannel_protocol::api::{
    fixed, ChallengeRequest, ChallengeResponse, LoginRequest, LoginResponse, PrincipalResponse,
    RegisterRequest,
};
use backchannel_protocol::identity::{check_identity_keys, verify, SignPurpose, CHALLENGE_LEN};
use backchannel_protocol::{b64, Digest, Handle, IdentityKeys, Timestamp};

use crate::app::{ApiJson, ApiPath, Caller, Relay};
use crate::config::Registration;
use crate::error::ApiError;
use crate::rate::ClientIp;
use crate::store::PrincipalRecord;

pub(crate) fn principal_json(p: &PrincipalRecord) -> PrincipalResponse {
    PrincipalResponse {
        handle: p.handle.to_string(),
        curve25519: b64::encode(p.keys.curve25519),
        ed25519: b64::encode(p.keys.ed25519),
        key_version: p.key_version,
    }
}

pub(crate) async fn register(
    State(relay): State<Relay>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> Result<(StatusCode, Json<PrincipalResponse>), ApiError> {
    let handle = Handle::new(req.handle.as_str())?;
    let keys = IdentityKeys {
        curve25519: fixed(&req.curve25519, "curve25519")?,
        ed25519: fixed(&req.ed25519, "ed25519")?,
    };
    check_identity_keys(&keys)?;
    if let Some(code) = &req.invite {
        check_invite_shape(code)?;
    }
    let invite = match (relay.config().registration, &req.invite) {
        (Registration::Open, _) => None,
        (Registration::Invite, None) => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "invite_required",
                "this relay registers by invitation only: ask its operator for a code (`backchannel relay invite`) and pass it with `init --invite CODE`",
            ))
        }
        (Registration::Invite, Some(code)) => Some(invite_hash(code)),
    };
    relay
        .limit(&[(
            format!("registrations/ip:{ip}"),
            relay.config().registrations_per_ip,
        )])
        .await?;
    relay.need_space().await?;
    let now = relay.now();
    let record = relay
        .run(move |s| s.register(&handle, &keys, now, invite.as_ref()))
        .await?;
    Ok((StatusCode::CREATED, Json(principal_json(&record))))
}

/// Longest invitation code the API takes (docs/protocol.md §9).
const INVITE_MAX_LEN: usize = 256;

/// An invitation field is judged by its shape even where registration is
/// open, so a malformed request is refused the same way on every relay.
fn check_invite_shape(code: &str) -> Result<(), ApiError> {
    if code.is_empty() || code.len() > INVITE_MAX_LEN {
        return Err(ApiError::invalid_field(format!(
            "invite: an invitation code has 1 to {INVITE_MAX_LEN} characters"
        )));
    }
    Ok(())
}

/// What the relay keeps of an invitation code: its hash, so a copy of the
/// database does not hand out registrations.
pub fn invite_hash(code: &str) -> Digest {
    Digest::of(&[b"backchannel/v1/invite\0", code.trim().as_bytes()])
}

pub(crate) async fn principal(
    State(relay): State<Relay>,
    _caller: Caller,
    ApiPath(handle): ApiPath<String>,
) -> Result<Json<PrincipalResponse>, ApiError> {
    let handle = Handle::new(handle)?;
    let h = handle.clone();
    match relay.run(move |s| s.principal(&h)).await? {
        Some(p) => Ok(Json(principal_json(&p))),
        None => Err(ApiError::unknown_principal(handle.as_str())),
    }
}

pub(crate) async fn challenge(
    State(relay): State<Relay>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<ChallengeRequest>,
) -> Result<Json<ChallengeResponse>, ApiError> {
    let handle = Handle::new(req.handle.as_str())?;
    let c = relay.config();
    relay
        .limit(&[
            (format!("challenges/ip:{ip}"), c.challenges_per_ip),
            (
                format!("challenges/handle:{handle}"),
                c.challenges_per_handle,
            ),
        ])
        .await?;
    let h = handle.clone();
    if relay.run(move |s| s.principal(&h)).await?.is_none() {
        return Err(ApiError::unknown_principal(handle.as_str()));
    }
    let challenge: [u8; CHALLENGE_LEN] = rand::random();
    let expires = Timestamp(relay.now().0 + relay.config().challenge_ttl_ms);
    relay
        .run(move |s| s.put_challenge(&challenge, &handle, expires))
        .await?;
    Ok(Json(ChallengeResponse {
        challenge: b64::encode(challenge),
        expires_at_ms: expires.0,
    }))
}

fn challenge_invalid(why: &str) -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "challenge_invalid",
        format!("{why}: ask for a new challenge (POST /v1/login/challenge)"),
    )
}

pub(crate) async fn login(
    State(relay): State<Relay>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, ApiError> {
    let handle = Handle::new(req.handle.as_str())?;
    let c = relay.config();
    relay
        .limit(&[
            (format!("logins/ip:{ip}"), c.logins_per_ip),
            (format!("logins/handle:{handle}@{ip}"), c.logins_per_handle),
        ])
        .await?;
    let challenge: [u8; CHALLENGE_LEN] = fixed(&req.challenge, "challenge")?;
    let signature: [u8; 64] = fixed(&req.signature, "signature")?;
    // Taken out first: a challenge is consumed by its first attempt, right or wrong.
    let Some((owner, expires)) = relay.run(move |s| s.take_challenge(&challenge)).await? else {
        return Err(challenge_invalid("unknown or already used challenge"));
    };
    if owner != handle {
        return Err(challenge_invalid(
            "this challenge was issued for another handle",
        ));
    }
    if expires <= relay.now() {
        return Err(challenge_invalid("the challenge has expired"));
    }
    let h = handle.clone();
    let Some(principal) = relay.run(move |s| s.principal(&h)).await? else {
        return Err(ApiError::unknown_principal(handle.as_str()));
    };
    if verify(
        SignPurpose::Login,
        &principal.keys.ed25519,
        &challenge,
        &signature,
    )
    .is_err()
    {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "login_failed",
            "the signature does not verify with this handle's Ed25519 key",
        ));
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    let hash = Digest::of(&[token.as_bytes()]);
    let expires = Timestamp(relay.now().0 + relay.config().token_ttl_ms);
    relay
        .run(move |s| s.put_token(&hash, &handle, expires))
        .await?;
    Ok(Json(LoginResponse {
        token,
        expires_at_ms: expires.0,
        expires_in_ms: Some(relay.config().token_ttl_ms),
    }))
}
