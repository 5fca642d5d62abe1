package io.kubetune.operator.reconciler;

import java.net.URI;

/**
 * An HTTP request to the API server, seen as RBAC sees it: API group, resource (with subresource),
 * verb.
 */
record ApiRequest(String group, String resource, String verb, String path) {

  static ApiRequest parse(String method, String rawPath) {
    URI uri = URI.create(rawPath);
    String query = uri.getRawQuery() == null ? "" : uri.getRawQuery();
    String[] p = uri.getPath().replaceAll("^/+", "").split("/");
    int i;
    String group;
    if (p[0].equals("api")) {
      group = "";
      i = 2; // api/v1/...
    } else {
      group = p[1];
      i = 3; // apis/group/version/...
    }
    if (i + 1 < p.length && p[i].equals("namespaces") && p.length > i + 2) {
      i += 2; // namespaces/{ns}/{resource}
    }
    String resource = p[i];
    boolean named = p.length > i + 1;
    if (p.length > i + 2) {
      resource = resource + "/" + p[i + 2];
    }
    String verb =
        switch (method) {
          case "GET" -> query.contains("watch=true") ? "watch" : named ? "get" : "list";
          case "POST" -> "create";
          case "PUT" -> "update";
          case "PATCH" -> "patch";
          case "DELETE" -> named ? "delete" : "deletecollection";
          default -> method.toLowerCase();
        };
    return new ApiRequest(group, resource, verb, rawPath);
  }

  boolean isWrite() {
    return switch (verb) {
      case "create", "update", "patch", "delete", "deletecollection" -> true;
      default -> false;
    };
  }
}
