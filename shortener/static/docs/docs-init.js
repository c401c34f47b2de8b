/*
 * Starts Swagger UI on the API's OpenAPI document. A file of its own rather than an inline
 * script, so the page's Content-Security-Policy can allow scripts from this server only.
 * The document's address is relative to the page (/api/v1.0/docs -> /api/v1.0/openapi.json).
 */
(function () {
  "use strict";
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    domNode: root,
    url: new URL(root.dataset.openapiUrl, document.baseURI).href,
    deepLinking: true,
    /* Credentials typed into "Authorize" live only as long as the page. */
    persistAuthorization: false,
    /* "Try it out" stays one deliberate click: the API has operations that delete. */
    tryItOutEnabled: false,
    displayRequestDuration: true,
    /* No badge from the public validator: the page makes no request to another host. */
    validatorUrl: null
  });
})();
