// Fills a textarea with the text of a chosen file (<input type=file data-fill="textarea-id">).
// Without JavaScript the user pastes instead; nothing else depends on this.
document.addEventListener("change", function (event) {
  var input = event.target;
  if (!input.matches || !input.matches("input[type=file][data-fill]") || !input.files || !input.files[0]) return;
  var target = document.getElementById(input.getAttribute("data-fill"));
  if (!target) return;
  input.files[0].text().then(function (text) { target.value = text; });
});
