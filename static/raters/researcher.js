// Copy buttons for the entry links page. Without this file the links are read-only fields to select and
// copy by hand; with it, each field [data-copy] selects its whole text on focus and gets a "Copy" button.
(function () {
  "use strict";

  function copy(field, button) {
    field.focus();
    field.select();
    var done = function () {
      button.textContent = "Copied";
      window.setTimeout(function () { button.textContent = "Copy"; }, 1500);
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(field.value).then(done, function () { document.execCommand("copy"); done(); });
    } else {
      // Plain-http deployments have no Clipboard API; the selection made above is copied instead.
      document.execCommand("copy");
      done();
    }
  }

  function enhance(field) {
    field.addEventListener("focus", function () { field.select(); });
    var button = document.createElement("button");
    button.type = "button";
    button.className = "btn btn-small";
    button.textContent = "Copy";
    var label = field.labels && field.labels[0];
    button.setAttribute("aria-label", "Copy " + (label ? label.textContent.trim() : "link"));
    button.addEventListener("click", function (event) {
      event.preventDefault();  // inside a <label>: do not also activate the label
      copy(field, button);
    });
    // Beside the field's label, where a full-width field leaves room for it.
    if (label) {
      label.append(" ");
      label.appendChild(button);
    } else {
      field.insertAdjacentElement("afterend", button);
    }
  }

  function init() {
    document.querySelectorAll("[data-copy]").forEach(enhance);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
