/* What every page does on load (each page's entry module imports it; pages
   without their own script load it alone): times in the reader's zone. */
import { localizeTimes } from "./format.js";

localizeTimes(document);
