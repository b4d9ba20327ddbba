/* The demo store: ask our own server for a checkout session, then open it with checkout.js. */
(function () {
  "use strict";
  var buy = document.getElementById("buy");
  var message = document.getElementById("store-message");

  buy.addEventListener("click", function () {
    buy.disabled = true;
    message.textContent = "";
    fetch("/demo/store/checkout", { method: "POST" })
      .then(function (response) {
        if (!response.ok) throw new Error("The store could not start a checkout.");
        return response.json();
      })
      .then(function (session) {
        Paygrid.open({
          sessionId: session.id,
          onSuccess: function (result) {
            message.textContent = "Thank you! Your payment " + result.paymentId + " went through.";
            buy.disabled = false;
          },
          onCancel: function () {
            message.textContent = "Checkout canceled; nothing was charged.";
            buy.disabled = false;
            buy.focus();
          },
        });
      })
      .catch(function (error) {
        message.textContent = error.message;
        buy.disabled = false;
      });
  });
})();
