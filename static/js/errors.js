// One error path for htmx: a 4xx/5xx answer (which htmx does not swap) or an unreachable server
// shows a message in the page's toast region (#toasts in the layout), instead of nothing.
(function () {
  function show(message) {
    var region = document.getElementById("toasts");
    if (!region) return;
    var toast = document.createElement("div");
    toast.className = "toast";
    toast.textContent = message;
    var close = document.createElement("button");
    close.type = "button";
    close.className = "link toast-close";
    close.textContent = "Dismiss";
    close.addEventListener("click", function () { toast.remove(); });
    toast.appendChild(close);
    region.appendChild(toast);
  }

  // The error page names the problem in its .error-message; fall back to the status.
  function messageOf(xhr) {
    try {
      var page = new DOMParser().parseFromString(xhr.responseText || "", "text/html");
      var found = page.querySelector(".error-message");
      if (found && found.textContent.trim()) return found.textContent.trim();
    } catch (e) { /* not HTML: use the status below */ }
    return "The server answered " + xhr.status + (xhr.statusText ? " " + xhr.statusText : "") + ".";
  }

  document.addEventListener("htmx:responseError", function (event) {
    show(messageOf(event.detail.xhr));
  });
  document.addEventListener("htmx:sendError", function () {
    show("The server could not be reached. Check your connection and try again.");
  });
})();
