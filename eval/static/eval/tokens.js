/* /tokens/: the new token's Copy button (the token is shown once; copying it by
   hand from a wrapped line is how a character gets lost). */
import "./site.js";
import { byId as $, setText } from "./dom.js";

const button = $("copy-token");
if (button) {
  button.hidden = false;
  button.addEventListener("click", async () => {
    const token = $("new-token").textContent.trim();
    try {
      await navigator.clipboard.writeText(token);
      setText($("copy-status"), "Copied.");
    } catch {
      // No clipboard here (plain http to a remote host): select it for Ctrl+C instead.
      window.getSelection().selectAllChildren($("new-token"));
      setText($("copy-status"), "Selected: press Ctrl+C (⌘C) to copy.");
    }
  });
}
