/* Publisher: the subscribe form's proof of work ([web] challenge), on ALTCHA's protocol.
   For each form with a data-challenge URL: fetch a challenge, find the number whose
   SHA-256 (after the salt) is the challenge, and put the answer, base64 JSON, in the
   form's hidden "altcha" field. It starts when the form is first focused; a form sent
   before it is done waits for it. No third party: pages allow this script by its hash. */
(function () {
  "use strict";
  var BATCH = 500;  // hashes in flight at once; the page stays responsive between batches
  var encoder = new TextEncoder();
  var handlers = new WeakMap();  // form: what its submit does

  function bytesOf(hex) {
    var out = new Uint8Array(hex.length / 2);
    for (var i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
    return out;
  }

  function same(buffer, wanted) {
    var got = new Uint8Array(buffer);
    for (var i = 0; i < wanted.length; i++) if (got[i] !== wanted[i]) return false;
    return true;
  }

  async function solve(challenge) {
    var wanted = bytesOf(challenge.challenge), tries, hashes, n, i;
    for (var start = 0; start <= challenge.maxnumber; start += BATCH) {
      tries = [];
      for (n = start; n < start + BATCH && n <= challenge.maxnumber; n++) {
        tries.push(crypto.subtle.digest("SHA-256", encoder.encode(challenge.salt + n)));
      }
      hashes = await Promise.all(tries);
      for (i = 0; i < hashes.length; i++) if (same(hashes[i], wanted)) return start + i;
    }
    throw new Error("no answer found");
  }

  function setup(form) {
    var field = form.querySelector('input[name="altcha"]');
    var status = form.querySelector("[data-challenge-status]");
    var job = null, askedAt = 0, lifetime = 0;
    if (!field) {
      field = document.createElement("input");
      field.type = "hidden";
      field.name = "altcha";
      form.appendChild(field);
    }
    if (!status) {
      status = document.createElement("p");
      status.setAttribute("data-challenge-status", "");
      status.setAttribute("role", "status");
      form.appendChild(status);
    }

    function say(text, state) {
      status.textContent = text;
      status.setAttribute("data-state", state);
    }

    function fresh() {
      return field.value !== "" && performance.now() - askedAt < lifetime;
    }

    async function verify() {
      field.value = "";
      say("Verifying you\u2019re human\u2026", "working");
      try {
        if (!window.crypto || !crypto.subtle) throw new Error("this page is not served over https");
        var asked = performance.now();  // the challenge's lifetime starts about now
        var answer = await fetch(form.getAttribute("data-challenge"),
                                 {credentials: "omit", headers: {"Accept": "application/json"}});
        if (!answer.ok) throw new Error("the server answered " + answer.status);
        var challenge = await answer.json(), began = performance.now();
        var number = await solve(challenge);
        field.value = btoa(JSON.stringify({
          algorithm: challenge.algorithm, challenge: challenge.challenge, number: number,
          salt: challenge.salt, signature: challenge.signature,
          took: Math.round(performance.now() - began)}));
        askedAt = asked;
        // Solve again rather than send an answer the server is about to call expired.
        lifetime = Math.max(0, challenge.expires_in - 30) * 1000;
        say("Verified: you can send the form.", "done");
      } catch (error) {
        say("Could not verify that you\u2019re human (" + error.message + "). " +
            "Reload the page to try again.", "failed");
      }
    }

    function start() {
      if (!job) job = verify().finally(function () { job = null; });
      return job;
    }

    form.addEventListener("focusin", function () { if (!fresh()) start(); });
    handlers.set(form, function (event) {
      if (fresh()) {
        // An answer is good once: after this send (a page or a fetch), solve anew.
        setTimeout(function () { field.value = ""; say("", "spent"); }, 0);
        return;
      }
      event.preventDefault();
      event.stopPropagation();
      var submitter = event.submitter;
      start().then(function () {
        if (!fresh()) return;
        if (submitter) form.requestSubmit(submitter); else form.requestSubmit();
      });
    });
  }

  function setupAll() {
    var forms = document.querySelectorAll("form[data-challenge]");
    for (var i = 0; i < forms.length; i++) setup(forms[i]);
    // Capturing on the document runs before any handler on the form itself (a page's
    // own fetch, say), so those see the submit only once the answer is in the form.
    document.addEventListener("submit", function (event) {
      var handle = handlers.get(event.target);
      if (handle) handle(event);
    }, true);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setupAll);
  } else {
    setupAll();
  }
})();
