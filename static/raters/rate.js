/* The rating page's keyboard and timing. Loaded from our static files: the page's CSP forbids inline script.
 *
 * Keys: 1 = A better, 2 = B better, 3 = tie, 4 = both bad (when offered), S / M = slightly / much better
 * (when asked); Enter submits once a choice is made. Keys are ignored while typing in the reason box.
 * The page also reports how long it was visible ("active seconds") in a hidden field.
 * Everything here is optional: with JavaScript off the form is a plain POST.
 */
(function () {
  "use strict";

  var CHOICE_KEYS = { "1": "left", "2": "right", "3": "tie", "4": "both_bad" };
  var STRENGTH_KEYS = { s: "slightly", m: "much" };

  document.documentElement.classList.add("js");

  // --- active time: only while the tab is visible ---------------------------------------------------
  var activeMs = 0;
  var visibleSince = null;

  function startClock() {
    activeMs = 0;
    visibleSince = document.visibilityState === "visible" ? Date.now() : null;
  }

  function activeSeconds() {
    var ms = activeMs + (visibleSince === null ? 0 : Date.now() - visibleSince);
    return (ms / 1000).toFixed(1);
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") {
      if (visibleSince === null) visibleSince = Date.now();
    } else if (visibleSince !== null) {
      activeMs += Date.now() - visibleSince;
      visibleSince = null;
    }
  });

  // --- the form ------------------------------------------------------------------------------------------
  function ratingForm() {
    var form = document.getElementById("rating-form");
    return form && !form.classList.contains("is-preview") ? form : null;
  }

  function fillActiveSeconds(form) {
    var field = form.querySelector("input[name='active_seconds']");
    if (field) field.value = activeSeconds();
  }

  // Capture phase: runs before htmx reads the form, for htmx and plain submits alike.
  document.addEventListener("submit", function (event) {
    if (event.target && event.target.id === "rating-form") fillActiveSeconds(event.target);
  }, true);

  function pick(form, name, value) {
    var input = form.querySelector("input[name='" + name + "'][value='" + value + "']");
    if (!input || input.disabled) return false;
    input.checked = true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }

  function isTyping(target) {
    if (!target) return false;
    var tag = target.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable) return true;
    return tag === "INPUT" && !/^(radio|checkbox|button|submit|hidden)$/i.test(target.type);
  }

  var submitting = false;

  document.addEventListener("keydown", function (event) {
    var form = ratingForm();
    if (!form || event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey) return;
    if (isTyping(event.target)) return;
    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;

    if (CHOICE_KEYS[key]) {
      if (pick(form, "choice", CHOICE_KEYS[key])) event.preventDefault();
      return;
    }
    if (STRENGTH_KEYS[key]) {
      if (pick(form, "strength", STRENGTH_KEYS[key])) event.preventDefault();
      return;
    }
    if (key === "Enter") {
      if (event.target && event.target.tagName === "A") return;  // let links work
      // Prevent the default in every case: a focused button or radio would otherwise submit a second time.
      event.preventDefault();
      if (submitting || !form.querySelector("input[name='choice']:checked")) return;
      // requestSubmit runs the browser's checks (a required reason) and fires "submit", which htmx handles.
      if (typeof form.requestSubmit === "function") {
        form.requestSubmit();
      } else {
        fillActiveSeconds(form);
        form.submit();
      }
    }
  });

  // htmx disables the submit button during the request; this also stops Enter from queueing a second one.
  document.addEventListener("htmx:beforeRequest", function (event) {
    if (event.target && event.target.id === "rating-form") submitting = true;
  });
  document.addEventListener("htmx:afterRequest", function () { submitting = false; });

  // --- after a swap: a new comparison ------------------------------------------------------------------
  function onNewComparison() {
    var rating = document.getElementById("rating");
    if (!rating) return;
    startClock();
    window.scrollTo(0, 0);
    // Focus the rating area so keys and screen readers start at the new comparison.
    rating.focus({ preventScroll: true });
  }

  // The only swap on these pages is the next comparison replacing #rating (or the same one with a message).
  document.addEventListener("htmx:afterSwap", onNewComparison);

  startClock();
})();
