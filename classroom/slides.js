// Navigation of the offline slides (classroom/slides_html.py): typesets the formulas with the
// inlined MathJax, scales the canvas to the window, shrinks a screen that overflows, and moves
// through screens and fragments with the keys a presenter's clicker sends.
(function () {
  "use strict";
  var deck = document.getElementById("deck");
  var counter = document.getElementById("counter");
  var screens = Array.prototype.slice.call(document.querySelectorAll("section.slide"));
  var MIN_FIT = 0.6;   // below this the text is too small for a projector: scroll instead
  var current = -1;

  function fragments(i) {
    return screens[i].querySelectorAll(".fragment");
  }

  function scaleDeck() {
    var style = getComputedStyle(document.documentElement);
    var width = parseFloat(style.getPropertyValue("--width"));
    var height = parseFloat(style.getPropertyValue("--height"));
    var scale = Math.min(window.innerWidth / width, window.innerHeight / height);
    deck.style.transform = "translate(-50%, -50%) scale(" + scale + ")";
  }

  function overflows(screen) {
    return screen.scrollHeight > screen.clientHeight + 1;
  }

  function fit(screen) {   // the largest font scale, down to MIN_FIT, at which nothing overflows
    var content = screen.querySelector(".content");
    screen.classList.remove("scroll");
    content.style.setProperty("--fit", "1");
    if (!overflows(screen)) return;
    var low = MIN_FIT, high = 1;
    for (var step = 0; step < 7; step++) {
      var middle = (low + high) / 2;
      content.style.setProperty("--fit", String(middle));
      if (overflows(screen)) high = middle; else low = middle;
    }
    content.style.setProperty("--fit", String(low));
    if (overflows(screen)) screen.classList.add("scroll");
  }

  function show(i, revealed) {
    i = Math.max(0, Math.min(screens.length - 1, i));
    if (current >= 0) screens[current].hidden = true;
    current = i;
    screens[i].hidden = false;
    var parts = fragments(i);
    for (var k = 0; k < parts.length; k++) parts[k].classList.toggle("visible", k < revealed);
    fit(screens[i]);
    counter.textContent = (i + 1) + " / " + screens.length;
    if (location.hash !== "#slide-" + (i + 1)) {
      history.replaceState(null, "", "#slide-" + (i + 1));
    }
  }

  function next() {
    var hidden = screens[current].querySelectorAll(".fragment:not(.visible)");
    if (hidden.length) hidden[0].classList.add("visible");
    else if (current < screens.length - 1) show(current + 1, 0);
  }

  function previous() {
    var shown = screens[current].querySelectorAll(".fragment.visible");
    if (shown.length) shown[shown.length - 1].classList.remove("visible");
    else if (current > 0) show(current - 1, fragments(current - 1).length);
  }

  function fromHash() {
    var match = /^#slide-(\d+)$/.exec(location.hash);
    return match ? parseInt(match[1], 10) - 1 : 0;
  }

  var KEYS = {
    ArrowRight: next, ArrowDown: next, PageDown: next, " ": next, Enter: next, n: next,
    ArrowLeft: previous, ArrowUp: previous, PageUp: previous, Backspace: previous, p: previous,
    Home: function () { show(0, 0); },
    End: function () { show(screens.length - 1, 0); }
  };

  document.addEventListener("keydown", function (event) {
    var action = KEYS[event.key];
    if (!action || event.altKey || event.ctrlKey || event.metaKey) return;
    var scrolling = screens[current].classList.contains("scroll");
    if (scrolling && (event.key === "ArrowDown" || event.key === "ArrowUp")) return;
    event.preventDefault();
    action();
  });
  window.addEventListener("hashchange", function () {
    if (fromHash() !== current) show(fromHash(), 0);
  });
  window.addEventListener("resize", function () { scaleDeck(); fit(screens[current]); });
  window.addEventListener("beforeprint", function () {   // print shows every screen: fit each
    for (var i = 0; i < screens.length; i++) {
      screens[i].hidden = false;
      fit(screens[i]);
      screens[i].hidden = i !== current;
    }
  });

  function typeset() {   // every formula, typeset once, before any screen is measured
    var formulas = document.querySelectorAll(".math");
    for (var k = 0; k < formulas.length; k++) {
      var display = formulas[k].classList.contains("display");
      var svg = window.MathJax.tex2svg(formulas[k].textContent, {display: display});
      formulas[k].replaceChildren(svg);
    }
    document.head.appendChild(window.MathJax.svgStylesheet());
  }

  function start() {
    typeset();
    scaleDeck();
    show(fromHash(), 0);
  }

  if (!screens.length) return;
  window.MathJax.startup.promise.then(start);
})();
