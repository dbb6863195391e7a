// Fidelity test service (Java 17, no tracing): com.sun.net.httpserver with a
// fixed thread pool. For GET /r/<id> it calls every downstream with
// GET /r/<id>.<NAME><i> and logs one ground-truth line {"svc","in","out"},
// as py_service.py does. CLIENT picks how it calls downstream:
//   httpclient        java.net.http.HttpClient send() (the client's own executor threads write)
//   httpclient-async  HttpClient sendAsync().join()
//   urlconnection     HttpURLConnection (the handler thread writes itself)
import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.HttpURLConnection;
import java.net.InetSocketAddress;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;

public class JavaService {
  static final String NAME = System.getenv("NAME");
  static final String CLIENT = System.getenv().getOrDefault("CLIENT", "httpclient");
  static final List<String> DOWNSTREAMS = new ArrayList<>();
  static final HttpClient HTTP = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).connectTimeout(Duration.ofSeconds(10)).build();

  static int call(String downstream, String path) throws Exception {
    String url = "http://" + downstream + path;
    switch (CLIENT) {
      case "urlconnection": {
        HttpURLConnection c = (HttpURLConnection) new URL(url).openConnection();
        c.setConnectTimeout(10_000);
        c.setReadTimeout(10_000);
        int status = c.getResponseCode();
        try (InputStream in = c.getInputStream()) {
          in.readAllBytes();
        }
        return status;
      }
      case "httpclient-async":
        return HTTP.sendAsync(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofByteArray()).join().statusCode();
      default:
        return HTTP.send(HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(10)).build(), HttpResponse.BodyHandlers.ofByteArray()).statusCode();
    }
  }

  static void handle(HttpExchange ex) {
    try {
      String path = ex.getRequestURI().getPath();
      String rid = path.substring(path.lastIndexOf('/') + 1);
      List<String> outs = new ArrayList<>();
      boolean ok = true;
      for (int i = 0; i < DOWNSTREAMS.size(); i++) {
        String out = rid + "." + NAME + i;
        outs.add(out);
        try {
          ok = call(DOWNSTREAMS.get(i), "/r/" + out) == 200 && ok;
        } catch (Exception e) {
          ok = false;
        }
      }
      byte[] body = (NAME + ":" + rid + " ").getBytes(StandardCharsets.UTF_8);
      ex.getResponseHeaders().set("Content-Type", "text/plain");
      ex.sendResponseHeaders(ok ? 200 : 502, body.length);
      try (OutputStream os = ex.getResponseBody()) {
        os.write(body);
      }
      StringBuilder line = new StringBuilder("{\"svc\":\"" + NAME + "\",\"in\":\"" + rid + "\",\"out\":[");
      for (int i = 0; i < outs.size(); i++) line.append(i > 0 ? "," : "").append('"').append(outs.get(i)).append('"');
      line.append("]}");
      synchronized (System.out) {
        System.out.println(line);
        System.out.flush();
      }
    } catch (Exception e) {
      ex.close();
    }
  }

  public static void main(String[] args) throws Exception {
    for (String d : System.getenv().getOrDefault("DOWNSTREAMS", "").split(",")) if (!d.isEmpty()) DOWNSTREAMS.add(d);
    int port = Integer.parseInt(System.getenv("PORT"));
    HttpServer server = HttpServer.create(new InetSocketAddress("0.0.0.0", port), 128);
    server.setExecutor(Executors.newFixedThreadPool(16));
    server.createContext("/r/", JavaService::handle);
    server.start();
    System.out.println("ready on " + port);
    System.out.flush();
  }
}
