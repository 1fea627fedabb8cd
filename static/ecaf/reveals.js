/*
 * Questions revealed by a radio (GOV.UK conditional reveals): govuk-frontend shows and hides them,
 * and marks each radio that reveals one with aria-expanded, which ARIA does not allow on a radio
 * (govuk-frontend issue 979), so the page would fail its accessibility check. This takes that one
 * attribute off again each time govuk-frontend sets it: when it starts, on every click (arrow keys
 * click too) and when the page is shown again from the history. The reveal itself, aria-controls
 * and the hidden class stay govuk-frontend's; checkboxes may carry aria-expanded and keep it.
 *
 * Load it as a module after govuk-frontend's initAll (base.html), so it runs once that has.
 */
function tidy() {
  document.querySelectorAll(".govuk-radios__input[aria-expanded]").forEach(function (radio) {
    radio.removeAttribute("aria-expanded");
  });
}

document.addEventListener("click", function (event) {
  if (event.target instanceof Element && event.target.matches(".govuk-radios__input")) {
    tidy();
  }
});
window.addEventListener("pageshow", tidy);
tidy();
