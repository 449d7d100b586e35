// Keyboard shortcuts for the moderation queue: j/k move between items, a approves the
// focused item, w withdraws it under the rule chosen in its form. Without JavaScript the
// buttons do the same.
(function () {
  "use strict";

  function items() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-queue-item]"));
  }

  function current() {
    var active = document.activeElement;
    return active && active.closest ? active.closest("[data-queue-item]") : null;
  }

  function typing(target) {
    return target && (target.isContentEditable ||
      /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName));
  }

  function move(step) {
    var list = items();
    if (!list.length) return;
    var index = list.indexOf(current());
    var next = list[Math.min(list.length - 1, Math.max(0, index + step))] || list[0];
    next.focus();
    next.scrollIntoView({ block: "start" });
  }

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    var key = event.key;
    if (key === "j") { move(1); event.preventDefault(); return; }
    if (key === "k") { move(-1); event.preventDefault(); return; }
    if (key !== "a" && key !== "w") return;
    var item = current();
    if (!item) return;
    var button = item.querySelector('[data-shortcut="' + key + '"]');
    if (!button) return;
    event.preventDefault();
    var form = button.form;
    var rule = form.querySelector("select[name=rule]");
    if (rule && !rule.value) {
      // A withdrawal must cite a rule: ask for one rather than send a form that will fail.
      rule.focus();
      return;
    }
    form.requestSubmit ? form.requestSubmit(button) : form.submit();
  });

  // Start with the first item focused so the shortcuts work at once.
  document.addEventListener("DOMContentLoaded", function () {
    if (document.querySelector(".form-error")) return;
    var first = items()[0];
    if (first && !window.location.hash) first.focus({ preventScroll: true });
  });
})();
