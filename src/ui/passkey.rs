//! The one script of the login and account pages: passkeys (WebAuthn) need the browser's
//! `navigator.credentials` API, which only script can call. It is inline and allowed by its
//! SHA-256 hash in the page's Content-Security-Policy (as the form_post page's script is), so
//! nothing else can run. It reads what it needs from the passkey form's `data-*` attributes,
//! shows the form (hidden without JavaScript, so those pages keep working with it off: there is
//! simply no passkey button), and submits the browser's answer as one hidden field of an ordinary
//! form POST, protected like every other form (sealed state, CSRF cookie and token).

/// The script. Its text is hashed as it stands: edit it here only.
pub const SCRIPT: &str = r#"(function () {
  if (!window.PublicKeyCredential || !navigator.credentials) return;
  var bytes = function (s) { return Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), function (c) { return c.charCodeAt(0); }); };
  var text = function (b) { return btoa(String.fromCharCode.apply(null, new Uint8Array(b))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, ''); };
  var fail = function (form, message) { var p = form.querySelector('.passkey-error'); if (p) { p.textContent = message; p.hidden = false; } };
  var signin = document.getElementById('passkey-signin');
  if (signin) {
    var d = signin.dataset, waiting = null, done = false;
    var finish = function (c) {
      if (!c || done) return;
      done = true;
      signin.elements.credential.value = JSON.stringify({ id: c.id, rawId: text(c.rawId), type: c.type,
        clientDataJSON: text(c.response.clientDataJSON), authenticatorData: text(c.response.authenticatorData),
        signature: text(c.response.signature), userHandle: c.response.userHandle ? text(c.response.userHandle) : null });
      signin.submit();
    };
    var get = function (mediation, signal) {
      var o = { publicKey: { challenge: bytes(d.challenge), rpId: d.rpId, userVerification: 'preferred', timeout: 120000, allowCredentials: [] } };
      if (mediation) o.mediation = mediation;
      if (signal) o.signal = signal;
      return navigator.credentials.get(o);
    };
    signin.hidden = false;
    signin.querySelector('button').addEventListener('click', function () {
      if (waiting) waiting.abort();
      waiting = null;
      get(null, null).then(finish, function () { fail(signin, 'No passkey was used. Try again, or sign in another way.'); });
    });
    if (PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (!ok || !window.AbortController) return;
        waiting = new AbortController();
        get('conditional', waiting.signal).then(finish, function () {});
      });
    }
  }
  var add = document.getElementById('passkey-add');
  if (add) {
    var a = add.dataset;
    add.hidden = false;
    add.querySelector('button').addEventListener('click', function () {
      if (add.elements.password && !add.elements.password.value) { fail(add, 'Enter your password first.'); return; }
      navigator.credentials.create({ publicKey: {
        challenge: bytes(a.challenge), rp: { id: a.rpId, name: a.rpName },
        user: { id: bytes(a.userId), name: a.userName, displayName: a.displayName },
        pubKeyCredParams: [{ type: 'public-key', alg: -7 }, { type: 'public-key', alg: -8 }, { type: 'public-key', alg: -257 }],
        authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: 'preferred' },
        attestation: 'none', timeout: 120000,
        excludeCredentials: JSON.parse(a.exclude).map(function (id) { return { type: 'public-key', id: bytes(id) }; })
      } }).then(function (c) {
        add.elements.credential.value = JSON.stringify({ id: c.id, rawId: text(c.rawId), type: c.type,
          clientDataJSON: text(c.response.clientDataJSON), attestationObject: text(c.response.attestationObject),
          transports: c.response.getTransports ? c.response.getTransports() : [] });
        add.submit();
      }, function () { fail(add, 'No passkey was created. If this device already has one for your account, it cannot be added twice.'); });
    });
  }
})();"#;

/// The pages' usual policy (edge/http.rs) with this script allowed by its hash.
pub fn csp() -> String {
    format!(
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; script-src {}; form-action *; frame-ancestors 'none'; base-uri 'none'",
        crate::ui::form_post::script_source(SCRIPT)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_policy_allows_exactly_this_script() {
        use base64::Engine;
        use sha2::{Digest, Sha256};
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(super::SCRIPT));
        let csp = super::csp();
        assert!(
            csp.contains(&format!("script-src 'sha256-{hash}';")),
            "{csp}"
        );
        assert!(!csp.contains("script-src 'unsafe"));
        // The text sits between <script> tags as is: it must not be able to close them.
        assert!(!super::SCRIPT.to_ascii_lowercase().contains("</script"));
    }
}
