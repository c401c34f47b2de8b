// A slug nobody has, put into the root's link template (RFC 6570: {slug}).
const slug = "postman-missing-" + Date.now().toString(36) + Math.random().toString(36).slice(2);
const template = pm.collectionVariables.get("linkTemplate");
pm.collectionVariables.set("missingLinkUri", template.replace("{slug}", encodeURIComponent(slug)));
