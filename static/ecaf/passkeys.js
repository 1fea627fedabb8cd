/*
 * Passkeys: runs navigator.credentials.create() or .get() with the options the server put in the
 * page, then posts the answer with the form, as JSON in its hidden "credential" field.
 *
 * Markup:
 *   <script type="application/json" id="passkey-options">{...options from py_webauthn...}</script>
 *   <form method="post" data-passkey="create|get" data-passkey-options="passkey-options">
 *     <input type="hidden" name="credential">
 *     <div data-passkey-error hidden role="alert"><p class="govuk-error-message"></p></div>
 *     <div data-passkey-supported hidden><button type="submit">...</button></div>
 *   </form>
 *   <div data-passkey-unsupported>What to do instead (shown without JavaScript or WebAuthn).</div>
 *
 * Without JavaScript or WebAuthn nothing here runs or it stops early: the button stays hidden and
 * the "unsupported" text, which offers the code instead, stays shown.
 */
(function () {
  "use strict";

  var CANCELLED = "The passkey was not used: the request was cancelled or ran out of time. Try again.";
  var FAILED = "Your browser could not use a passkey here. Try again, or use the code from your authenticator app.";

  function supported() {
    return !!(window.PublicKeyCredential && navigator.credentials && window.JSON);
  }

  function toBytes(value) {
    var text = value.replace(/-/g, "+").replace(/_/g, "/");
    while (text.length % 4) { text += "="; }
    var binary = atob(text);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) { bytes[i] = binary.charCodeAt(i); }
    return bytes.buffer;
  }

  function toText(buffer) {
    if (!buffer) { return null; }
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) { binary += String.fromCharCode(bytes[i]); }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      var copy = Object.assign({}, item);
      copy.id = toBytes(item.id);
      return copy;
    });
  }

  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) {
      return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    }
    var options = Object.assign({}, json);
    options.challenge = toBytes(json.challenge);
    options.user = Object.assign({}, json.user, { id: toBytes(json.user.id) });
    options.excludeCredentials = descriptors(json.excludeCredentials);
    return options;
  }

  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) {
      return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    }
    var options = Object.assign({}, json);
    options.challenge = toBytes(json.challenge);
    options.allowCredentials = descriptors(json.allowCredentials);
    return options;
  }

  function credentialJSON(credential) {
    if (typeof credential.toJSON === "function") {
      return credential.toJSON();
    }
    var response = credential.response;
    var json = {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {},
      response: { clientDataJSON: toText(response.clientDataJSON) }
    };
    if (response.attestationObject) {
      json.response.attestationObject = toText(response.attestationObject);
      json.response.transports = response.getTransports ? response.getTransports() : [];
    } else {
      json.response.authenticatorData = toText(response.authenticatorData);
      json.response.signature = toText(response.signature);
      json.response.userHandle = toText(response.userHandle);
    }
    return json;
  }

  function showError(form, text) {
    var box = form.querySelector("[data-passkey-error]");
    if (!box) { return; }
    box.querySelector("p").textContent = text;
    box.hidden = false;
  }

  function start(form) {
    var kind = form.getAttribute("data-passkey");
    var source = document.getElementById(form.getAttribute("data-passkey-options"));
    var field = form.querySelector("input[name=credential]");
    var button = form.querySelector("[data-passkey-supported] button");
    if (!source || !field || !button) { return; }
    var options = JSON.parse(source.textContent);

    form.addEventListener("submit", function (event) {
      if (field.value) { return; }  // the answer is in: let the form go
      event.preventDefault();
      button.disabled = true;
      var ask = kind === "create"
        ? navigator.credentials.create({ publicKey: creationOptions(options) })
        : navigator.credentials.get({ publicKey: requestOptions(options) });
      ask.then(function (credential) {
        field.value = JSON.stringify(credentialJSON(credential));
        form.submit();
      }, function (error) {
        button.disabled = false;
        showError(form, error && (error.name === "NotAllowedError" || error.name === "AbortError") ? CANCELLED : FAILED);
      });
    });

    form.querySelector("[data-passkey-supported]").hidden = false;
    var instead = document.querySelectorAll("[data-passkey-unsupported]");
    for (var i = 0; i < instead.length; i++) { instead[i].hidden = true; }
  }

  if (!supported()) { return; }
  var forms = document.querySelectorAll("form[data-passkey]");
  for (var i = 0; i < forms.length; i++) { start(forms[i]); }
}());
