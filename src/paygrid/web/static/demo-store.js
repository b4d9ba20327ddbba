/* The demo store: ask our own server for a checkout session, then open it with checkout.js. */
(function () {
  "use strict";
  var buy = document.getElementById("buy");
  var message = document.getElementById("store-message");

  // The button stays enabled (and focused) while the session is made: checkout.js gives the
  // focus back to it when the modal closes. A second click meanwhile does nothing.
  var starting = false;

  buy.addEventListener("click", function () {
    if (starting) return;
    starting = true;
    message.textContent = "";
    fetch("/demo/store/checkout", { method: "POST" })
      .then(function (response) {
        if (!response.ok) throw new Error("The store could not start a checkout.");
        return response.json();
      })
      .then(function (session) {
        starting = false;
        Paygrid.open({
          sessionId: session.id,
          onSuccess: function (result) {
            message.textContent = "Thank you! Your payment " + result.paymentId + " went through.";
          },
          onCancel: function () {
            message.textContent = "Checkout canceled; nothing was charged.";
          },
        });
      })
      .catch(function (error) {
        message.textContent = error.message;
        starting = false;
      });
  });
})();
