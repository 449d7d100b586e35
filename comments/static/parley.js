// Small enhancements for Parley's pages. Every page works without this file.
(function () {
  "use strict";

  // Opening "Reply", "Edit" or "Report" puts the cursor straight into the form.
  document.addEventListener("toggle", function (event) {
    var details = event.target;
    if (!(details instanceof HTMLDetailsElement) || !details.open) return;
    var field = details.querySelector("textarea, select, input:not([type=hidden])");
    if (field) field.focus();
  }, true);

  // Ask before deleting a comment.
  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("[data-confirm]") : null;
    if (button && !window.confirm(button.getAttribute("data-confirm"))) {
      event.preventDefault();
    }
  });

  // A form that was refused comes back open; take the reader to it.
  document.addEventListener("DOMContentLoaded", function () {
    var error = document.querySelector(".form-error");
    if (!error) return;
    var form = error.closest("form");
    var field = form && form.querySelector("textarea, select, input:not([type=hidden])");
    (field || error).focus();
  });
})();
