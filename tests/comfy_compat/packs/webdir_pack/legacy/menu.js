import { app } from "../../scripts/app.js";

app.registerExtension({ name: "webdir_pack.legacy_menu" });
