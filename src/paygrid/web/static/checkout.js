/* paygrid checkout.js: open a paygrid hosted checkout page in a modal on your site.
 *
 *   <script src="https://pay.example.com/js/checkout.js"></script>
 *   Paygrid.open({
 *     sessionId: "cs_...",                       // from POST /v1/checkout_sessions (server side)
 *     onSuccess: function (r) { ... },           // r = {sessionId, paymentId}
 *     onCancel: function (r) { ... },            // r = {sessionId}
 *   });
 *   Paygrid.close();
 *
 * The page runs in an <iframe> served by paygrid; it reports back with postMessage, and only
 * messages from paygrid's origin (the origin this script was loaded from) are accepted.
 * Fulfil orders from the checkout_session.completed webhook, not from onSuccess alone. */
(function (global) {
  "use strict";

  var script = document.currentScript;
  var ORIGIN = new URL(script ? script.src : "/", global.location.href).origin;
  var current = null;

  function element(tag, styles, attributes) {
    var node = document.createElement(tag);
    Object.keys(styles || {}).forEach(function (name) { node.style[name] = styles[name]; });
    Object.keys(attributes || {}).forEach(function (name) { node.setAttribute(name, attributes[name]); });
    return node;
  }

  function open(options) {
    if (!options || typeof options.sessionId !== "string" || !/^cs_[A-Za-z0-9]+$/.test(options.sessionId)) {
      throw new Error("Paygrid.open needs {sessionId: 'cs_...'}");
    }
    close();
    var overlay = element("div", {
      position: "fixed", inset: "0", zIndex: "2147483647", background: "rgba(17, 24, 39, .6)",
      display: "flex", alignItems: "center", justifyContent: "center",
    }, { "data-paygrid-checkout": "", role: "dialog", "aria-modal": "true", "aria-label": "Checkout" });
    var frameBox = element("div", {
      position: "relative", width: "100%", maxWidth: "30rem", height: "100%", maxHeight: "46rem",
      background: "#fff", borderRadius: "12px", overflow: "hidden",
    });
    var closeButton = element("button", {
      position: "absolute", top: ".5rem", right: ".5rem", width: "2.75rem", height: "2.75rem",
      border: "0", borderRadius: "50%", background: "#1a1a1a", color: "#fff",
      fontSize: "1.5rem", lineHeight: "1", cursor: "pointer", zIndex: "1",
    }, { type: "button", "aria-label": "Close" });
    closeButton.textContent = "\u00d7";
    var iframe = element("iframe", { width: "100%", height: "100%", border: "0", display: "block" }, {
      src: ORIGIN + "/checkout/" + encodeURIComponent(options.sessionId) + "?embed=1",
      title: "Checkout",
      allow: "payment",
    });
    // Tab past either end of the dialog comes back into it (a focus trap): the guards take
    // the focus and hand it on. Shift+Tab from the close button enters the frame at its end.
    var guardStart = element("span", {}, { tabindex: "0", "data-focus-guard": "" });
    var guardEnd = element("span", {}, { tabindex: "0", "data-focus-guard": "" });
    guardStart.addEventListener("focus", function () { closeButton.focus(); });
    guardEnd.addEventListener("focus", function () { focusFrame(); });
    frameBox.appendChild(iframe);
    frameBox.appendChild(closeButton);
    overlay.appendChild(guardStart);
    overlay.appendChild(frameBox);
    overlay.appendChild(guardEnd);

    var opener = document.activeElement;
    current = {
      options: options,
      overlay: overlay,
      iframe: iframe,
      returnFocus: opener && opener !== document.body ? opener : null,
      onMessage: function (event) { receive(event); },
      onKey: function (event) { if (event.key === "Escape") cancel(); },
    };
    // After every page load in the frame (3-D Secure and provider round trips included),
    // introduce ourselves, so the page knows where to post its result.
    iframe.addEventListener("load", function () {
      iframe.contentWindow.postMessage({ type: "paygrid.checkout.init" }, ORIGIN);
    });
    closeButton.addEventListener("click", cancel);
    global.addEventListener("message", current.onMessage);
    document.addEventListener("keydown", current.onKey);
    document.body.appendChild(overlay);
    closeButton.focus();
  }

  function focusFrame() {
    if (!current) return;
    current.iframe.focus();
    // The page moves the focus to its first control (Escape inside it closes the modal).
    current.iframe.contentWindow.postMessage({ type: "paygrid.checkout.focus" }, ORIGIN);
  }

  function receive(event) {
    if (!current || event.origin !== ORIGIN || event.source !== current.iframe.contentWindow) return;
    var data = event.data || {};
    if (data.sessionId !== current.options.sessionId) return;
    var options = current.options;
    if (data.type === "paygrid.checkout.succeeded") {
      finish(options.onSuccess, { sessionId: data.sessionId, paymentId: data.paymentId });
    } else if (data.type === "paygrid.checkout.canceled") {
      finish(options.onCancel, { sessionId: data.sessionId });
    }
  }

  function cancel() {
    if (!current) return;
    finish(current.options.onCancel, { sessionId: current.options.sessionId });
  }

  // Close, tell the merchant's page, then give the focus back to what opened the modal (after
  // the callback, which may re-enable that button).
  function finish(callback, result) {
    var returnFocus = teardown();
    if (callback) callback(result);
    restoreFocus(returnFocus);
  }

  function close() {
    restoreFocus(teardown());
  }

  function teardown() {
    if (!current) return null;
    var closing = current;
    current = null;
    global.removeEventListener("message", closing.onMessage);
    document.removeEventListener("keydown", closing.onKey);
    if (closing.overlay.parentNode) closing.overlay.parentNode.removeChild(closing.overlay);
    return closing.returnFocus;
  }

  function restoreFocus(target) {
    if (target && target.isConnected && target.focus) target.focus();
  }

  global.Paygrid = { open: open, close: close, origin: ORIGIN };
})(window);
