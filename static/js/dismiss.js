// A button with data-dismiss="<selector>" removes its closest ancestor matching the selector
// (the calendar's entry summary); an inline handler would break the CSP.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-dismiss]");
  const panel = button && button.closest(button.dataset.dismiss);
  if (panel) panel.remove();
});
