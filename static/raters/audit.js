/* The expert audit page: turning a text selection into offsets, keys, and keeping place across htmx swaps.
 * Loaded from our static files: the page's CSP forbids inline script.
 *
 * Offsets. The response text is rendered by the server as a run of <span data-s data-n> elements inside
 * #response-text, each holding one piece of the original text: data-s is the piece's offset into the
 * response text and data-n its length there, both in Unicode code points (as Python indexes strings). A
 * selection's two ends are mapped through the span they fall in: start of span + code points before the end
 * point within it. Line breaks written CR LF are spans of their own, shown as one LF (the browser would turn
 * CR LF into LF anyway), whose data-n says how long they really are. The offsets and the selected text go to
 * the server, which checks that the text at those offsets is what was selected.
 *
 * Keys (ignored while typing in a field): M / N flag the current selection as major / minor and move to
 * "What is wrong"; Ctrl+Enter (or Cmd+Enter) in the finding form adds the finding; 1-4 choose the verdict;
 * Enter submits the verdict once one is chosen; Escape in the finding form goes back to the text.
 * Everything here is optional: without JavaScript the forms are plain POSTs and the passage can be pasted.
 */
(function () {
  "use strict";

  var VERDICT_KEYS = { "1": "no_errors", "2": "minor", "3": "major", "4": "not_checkable" };
  var SEVERITY_KEYS = { m: "major", n: "minor" };

  document.documentElement.classList.add("js");

  function textBox() { return document.getElementById("response-text"); }
  function findingForm() { return document.getElementById("finding-form"); }
  function verdictForm() { return document.getElementById("verdict-form"); }

  function codePoints(text) { return Array.from(text).length; }

  // --- selection -> offsets ----------------------------------------------------------------------------
  function segmentOf(node) {
    var element = node.nodeType === Node.TEXT_NODE ? node.parentNode : node;
    return element && element.closest ? element.closest("[data-s]") : null;
  }

  function segmentStart(segment) { return parseInt(segment.getAttribute("data-s"), 10); }
  function segmentEnd(segment) { return segmentStart(segment) + parseInt(segment.getAttribute("data-n"), 10); }

  /* The offset into the response text of a DOM boundary point (node, offset) inside the text box. */
  function pointOffset(box, node, offset) {
    var segment = segmentOf(node);
    if (segment && box.contains(segment)) {
      if (node.nodeType === Node.TEXT_NODE) {
        if (offset >= node.data.length) return segmentEnd(segment);
        return Math.min(segmentStart(segment) + codePoints(node.data.slice(0, offset)), segmentEnd(segment));
      }
      if (node === segment) return offset === 0 ? segmentStart(segment) : segmentEnd(segment);
    }
    // A point between elements (a triple click, a drag past the end): the first segment at or after it.
    var segments = box.querySelectorAll("[data-s]");
    for (var i = 0; i < segments.length; i++) {
      var range = document.createRange();
      range.selectNodeContents(segments[i]);
      if (range.comparePoint(node, offset) <= 0) return segmentStart(segments[i]);
    }
    return parseInt(box.getAttribute("data-length"), 10);
  }

  function showStatus(text) {
    var status = document.getElementById("selection-status");
    if (status) status.textContent = text;
  }

  function setSpan(start, end, quote) {
    var form = findingForm();
    if (!form) return;
    form.elements.start.value = String(start);
    form.elements.end.value = String(end);
    form.elements.quote.value = quote;
    showStatus("Characters " + start + "–" + end + " of the response.");
  }

  function captureSelection() {
    var box = textBox();
    var selection = window.getSelection();
    if (!box || !selection || selection.rangeCount === 0 || selection.isCollapsed) return;
    var range = selection.getRangeAt(0);
    if (!range.intersectsNode(box)) return;
    // A drag that starts or ends outside the text is cut to the text.
    var clipped = document.createRange();
    if (box.contains(range.startContainer)) clipped.setStart(range.startContainer, range.startOffset);
    else clipped.setStart(box, 0);
    if (box.contains(range.endContainer)) clipped.setEnd(range.endContainer, range.endOffset);
    else clipped.setEnd(box, box.childNodes.length);
    var start = pointOffset(box, clipped.startContainer, clipped.startOffset);
    var end = pointOffset(box, clipped.endContainer, clipped.endOffset);
    if (end <= start) return;
    setSpan(start, end, clipped.toString());
  }

  // Only selections inside the text count: clicking into the form afterwards keeps the captured passage.
  document.addEventListener("selectionchange", captureSelection);

  // Typing or pasting a passage by hand: the server finds it in the text, so the offsets are dropped.
  document.addEventListener("input", function (event) {
    var form = findingForm();
    if (form && event.target === form.elements.quote) {
      form.elements.start.value = "";
      form.elements.end.value = "";
      showStatus(event.target.value ? "The server will find this passage in the response." : "");
    }
  });

  // --- findings on the text --------------------------------------------------------------------------
  function markFinding(id, on) {
    var box = textBox();
    if (!box) return;
    box.querySelectorAll("[data-f]").forEach(function (segment) {
      if (segment.getAttribute("data-f").split(" ").indexOf(id) !== -1) segment.classList.toggle("is-active", on);
    });
  }

  ["mouseover", "focusin"].forEach(function (type) {
    document.addEventListener(type, function (event) {
      var item = event.target.closest && event.target.closest("[data-finding]");
      if (item) markFinding(item.getAttribute("data-finding"), true);
    });
  });
  ["mouseout", "focusout"].forEach(function (type) {
    document.addEventListener(type, function (event) {
      var item = event.target.closest && event.target.closest("[data-finding]");
      if (item) markFinding(item.getAttribute("data-finding"), false);
    });
  });

  // --- keys ------------------------------------------------------------------------------------------
  function isTyping(target) {
    if (!target) return false;
    var tag = target.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable) return true;
    return tag === "INPUT" && !/^(radio|checkbox|button|submit|hidden)$/i.test(target.type);
  }

  function pick(form, name, value) {
    var input = form && form.querySelector("input[name='" + name + "'][value='" + value + "']");
    if (!input || input.disabled) return false;
    input.checked = true;
    input.dispatchEvent(new Event("change", { bubbles: true }));
    return true;
  }

  function submitForm(form) {
    if (typeof form.requestSubmit === "function") form.requestSubmit();
    else form.submit();
  }

  var submitting = false;

  document.addEventListener("keydown", function (event) {
    if (event.defaultPrevented || event.altKey) return;
    var finding = findingForm();
    var verdict = verdictForm();
    if (!finding || !verdict) return;

    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      if (finding.contains(event.target)) {
        event.preventDefault();
        if (!submitting) submitForm(finding);
      }
      return;
    }
    if (event.key === "Escape" && finding.contains(event.target)) {
      event.preventDefault();
      textBox().focus();
      return;
    }
    if (event.ctrlKey || event.metaKey || isTyping(event.target)) return;
    var key = event.key.length === 1 ? event.key.toLowerCase() : event.key;

    if (SEVERITY_KEYS[key]) {
      if (pick(finding, "severity", SEVERITY_KEYS[key])) {
        event.preventDefault();
        captureSelection();
        finding.elements.note.focus();
      }
      return;
    }
    if (VERDICT_KEYS[key]) {
      if (pick(verdict, "verdict", VERDICT_KEYS[key])) event.preventDefault();
      return;
    }
    if (key === "Enter") {
      if (event.target && (event.target.tagName === "A" || event.target.tagName === "BUTTON" ||
                           event.target.tagName === "SUMMARY")) return;  // let links, buttons and toggles work
      if (finding.contains(event.target)) return;  // a radio in the finding form: not the verdict
      event.preventDefault();
      if (submitting || !verdict.querySelector("input[name='verdict']:checked")) return;
      submitForm(verdict);
    }
  });

  // --- across swaps: keep the place after a finding, start at the top for a new response ------------------
  var before = null;

  document.addEventListener("htmx:beforeRequest", function (event) {
    submitting = true;
    var audit = document.getElementById("audit");
    var box = textBox();
    before = {
      audit: audit ? audit.getAttribute("data-audit") : null,
      fromVerdict: event.target && event.target.id === "verdict-form",
      textScroll: box ? box.scrollTop : 0,
      windowScroll: window.scrollY,
    };
  });
  document.addEventListener("htmx:afterRequest", function () { submitting = false; });

  document.addEventListener("htmx:afterSwap", function () {
    var audit = document.getElementById("audit");
    if (!audit) return;
    var box = textBox();
    var error = audit.querySelector("[role=alert]");
    var same = before && audit.getAttribute("data-audit") === before.audit;
    if (same && box) {
      box.scrollTop = before.textScroll;
      window.scrollTo(0, before.windowScroll);
    } else {
      window.scrollTo(0, 0);
    }
    if (error && same && !before.fromVerdict) {
      // A refused finding: back to the form with what was typed.
      var form = findingForm();
      if (form) form.elements.note.focus({ preventScroll: true });
    } else if (same && box && !before.fromVerdict) {
      box.focus({ preventScroll: true });  // ready to select the next passage
    } else {
      audit.focus({ preventScroll: true });
    }
    before = null;
  });
})();
