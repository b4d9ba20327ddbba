/* paygrid hosted checkout page. Plain JS, no build step.
 *
 * Card data is sent only to the tokenizer (POST /v1/payment_methods with the merchant's
 * publishable key); the form then posts just the resulting pm_... to /checkout/{id}/pay.
 * Inside checkout.js's iframe (data-embed), the end of the checkout is reported to the
 * merchant's page with postMessage, to the origin that introduced itself with
 * {type: "paygrid.checkout.init"}, instead of navigating the top window. */
(function () {
  "use strict";

  var body = document.body;
  var sessionId = body.getAttribute("data-session-id");
  var embedded = body.getAttribute("data-embed") === "1" && window.parent !== window;

  // -- talking to the merchant's page (embed mode) ----------------------------------------
  var parentOrigin = null;
  var pending = [];

  function report(type, paymentId) {
    pending.push({ type: type, sessionId: sessionId, paymentId: paymentId || null });
    flush();
  }

  function flush() {
    if (!parentOrigin) return;
    while (pending.length) window.parent.postMessage(pending.shift(), parentOrigin);
  }

  if (embedded) {
    window.addEventListener("message", function (event) {
      if (event.source !== window.parent || !event.data) return;
      if (event.data.type === "paygrid.checkout.focus") {
        // checkout.js's focus trap: Tab went past the close button, so start again here.
        var first = document.querySelector("main input:not([type=hidden]), main button, main a[href]");
        if (first) first.focus();
        return;
      }
      if (event.data.type !== "paygrid.checkout.init") return;
      parentOrigin = event.origin;
      flush();
    });
    // Escape closes the modal from inside it too, as from checkout.js's own close button;
    // never while a payment is being sent.
    document.addEventListener("keydown", function (event) {
      var sending = document.querySelector("button[aria-busy=true]");
      if (event.key === "Escape" && !sending) report("paygrid.checkout.canceled", null);
    });
    var finished = body.getAttribute("data-event");
    if (finished) report(finished, body.getAttribute("data-payment-id"));
    var cancel = document.getElementById("cancel-link");
    if (cancel) {
      cancel.addEventListener("click", function (event) {
        event.preventDefault();
        report("paygrid.checkout.canceled", null);
      });
    }
  }

  // -- a page that opens with an error (a decline after 3-D Secure, a refused form) --------
  var pageError = document.getElementById("form-error");
  if (pageError && pageError.textContent.trim()) pageError.focus();

  // -- the card form ---------------------------------------------------------------------
  var form = document.getElementById("card-form");
  if (!form) return;

  var number = document.getElementById("card-number");
  var expiry = document.getElementById("card-expiry");
  var cvc = document.getElementById("card-cvc");
  var brandBadge = document.getElementById("card-brand");
  var button = document.getElementById("pay-button");
  var formError = document.getElementById("form-error");
  var paymentMethod = document.getElementById("payment-method");
  var buttonLabel = button.textContent;

  var BRAND_NAMES = { visa: "Visa", mastercard: "Mastercard", amex: "American Express", verve: "Verve" };

  function digits(value) {
    return value.replace(/\D/g, "");
  }

  function brandOf(num) {
    if (/^(506|650)/.test(num)) return "verve";
    if (/^3[47]/.test(num)) return "amex";
    if (/^4/.test(num)) return "visa";
    var prefix = parseInt(num.slice(0, 4), 10);
    if (/^5[1-5]/.test(num) || (prefix >= 2221 && prefix <= 2720)) return "mastercard";
    return null;
  }

  function luhn(num) {
    var total = 0;
    for (var i = 0; i < num.length; i++) {
      var d = parseInt(num.charAt(num.length - 1 - i), 10);
      if (i % 2 === 1) d = d > 4 ? d * 2 - 9 : d * 2;
      total += d;
    }
    return total % 10 === 0;
  }

  // Published test cards that fail Luhn (the simulator accepts them too).
  var LISTED = { "5061020283705678": true };

  function numberError() {
    var num = digits(number.value);
    if (!num) return "Enter your card number.";
    if (num.length < 12 || num.length > 19 || !(LISTED[num] || luhn(num))) {
      return "Your card number is incorrect.";
    }
    return null;
  }

  function parseExpiry() {
    var match = /^\s*(\d{1,2})\s*\/?\s*(\d{2})\s*$/.exec(expiry.value);
    if (!match) return null;
    return { month: parseInt(match[1], 10), year: 2000 + parseInt(match[2], 10) };
  }

  function expiryError() {
    if (!expiry.value.trim()) return "Enter the expiry date as MM / YY.";
    var parsed = parseExpiry();
    if (!parsed || parsed.month < 1 || parsed.month > 12) return "Enter the expiry date as MM / YY.";
    var now = new Date();
    var thisMonth = now.getFullYear() * 12 + now.getMonth();
    if (parsed.year * 12 + parsed.month - 1 < thisMonth) return "Your card has expired.";
    return null;
  }

  function cvcError() {
    var length = brandOf(digits(number.value)) === "amex" ? 4 : 3;
    if (!new RegExp("^\\d{" + length + "}$").test(cvc.value.trim())) {
      return "Enter the " + length + "-digit CVC.";
    }
    return null;
  }

  var checks = [
    [number, numberError],
    [expiry, expiryError],
    [cvc, cvcError],
  ];

  function show(input, message) {
    var slot = document.getElementById(input.id + "-error");
    slot.textContent = message || "";
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }

  function validate(input, check) {
    var message = check();
    show(input, message);
    return message;
  }

  number.addEventListener("input", function () {
    var num = digits(number.value).slice(0, 19);
    var grouped = brandOf(num) === "amex"
      ? [num.slice(0, 4), num.slice(4, 10), num.slice(10)].filter(Boolean).join(" ")
      : num.replace(/(\d{4})(?=\d)/g, "$1 ");
    if (grouped !== number.value) number.value = grouped;
    var brand = brandOf(num);
    var name = brand ? BRAND_NAMES[brand] : "";
    if (brandBadge.textContent !== name) brandBadge.textContent = name;
    brandBadge.setAttribute("data-brand", brand || "");
  });

  expiry.addEventListener("input", function (event) {
    var d = digits(expiry.value).slice(0, 4);
    if (event.inputType && event.inputType.indexOf("delete") === 0) return;
    if (d.length === 1 && d > "1") d = "0" + d;
    expiry.value = d.length >= 2 ? d.slice(0, 2) + " / " + d.slice(2) : d;
  });

  checks.forEach(function (pair) {
    pair[0].addEventListener("blur", function () {
      if (pair[0].value.trim()) validate(pair[0], pair[1]);
    });
    pair[0].addEventListener("input", function () {
      if (pair[0].getAttribute("aria-invalid") === "true") validate(pair[0], pair[1]);
    });
  });

  function busy(on) {
    button.disabled = on;
    button.textContent = on ? "Processing…" : buttonLabel;
    button.setAttribute("aria-busy", on ? "true" : "false");
  }

  window.addEventListener("pageshow", function (event) {
    if (event.persisted) busy(false);
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (button.disabled) return;
    formError.textContent = "";
    var firstInvalid = null;
    checks.forEach(function (pair) {
      if (validate(pair[0], pair[1]) && !firstInvalid) firstInvalid = pair[0];
    });
    if (firstInvalid) {
      firstInvalid.focus();
      return;
    }
    var parsed = parseExpiry();
    busy(true);
    fetch(form.getAttribute("data-tokenize-url"), {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Authorization: "Bearer " + form.getAttribute("data-publishable-key"),
      },
      body: JSON.stringify({
        type: "card",
        card: {
          number: digits(number.value),
          exp_month: parsed.month,
          exp_year: parsed.year,
          cvc: cvc.value.trim(),
        },
      }),
    })
      .then(function (response) {
        return response.json().then(function (payload) {
          return { ok: response.ok, payload: payload };
        });
      })
      .then(function (result) {
        if (!result.ok) {
          var error = (result.payload && result.payload.error) || {};
          throw new Error(error.message || "Your card could not be used. Try another card.");
        }
        paymentMethod.value = result.payload.id;
        return pay();
      })
      .catch(function (error) {
        busy(false);
        paymentMethod.value = "";
        // What the customer typed stays, except the CVC, which is never kept.
        cvc.value = "";
        formError.textContent = error instanceof TypeError
          ? "We could not reach the payment service. Check your connection and try again."
          : error.message;
        formError.focus();
      });
  });

  // The form posts in the background, so a decline is shown in place of a fresh page. The
  // card fields have no name: only the pm_... and the form token are posted.
  function pay() {
    return fetch(form.action, {
      method: "POST",
      headers: { Accept: "application/json" },
      body: new URLSearchParams(new FormData(form)),
      credentials: "same-origin",
    })
      .then(function (response) {
        return response.json().catch(function () {
          throw new Error("Something went wrong. Reload the page and try again.");
        });
      })
      .then(function (answer) {
        if (answer.navigate) {
          window.location.assign(answer.navigate);
          return;
        }
        throw new Error(answer.error || "Your card could not be used. Try another card.");
      });
  }
})();
