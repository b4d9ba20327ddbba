// The payment link page's "Copy URL" button: copies the link's URL and says so.
(function () {
  "use strict";
  var button = document.getElementById("copy-url");
  var field = document.getElementById("link-url");
  var status = document.getElementById("copy-status");
  if (!button || !field || !status) return;
  button.hidden = false;
  button.addEventListener("click", function () {
    var done = function () { status.textContent = "Copied."; };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(field.value).then(done, function () {
        field.select();
        status.textContent = "Press Ctrl+C (or Cmd+C) to copy.";
      });
    } else {
      field.select();
      document.execCommand("copy");
      done();
    }
  });
})();
