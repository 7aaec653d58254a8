package dev.embedrank.client;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import javax.tools.Diagnostic;
import javax.tools.DiagnosticCollector;
import javax.tools.JavaCompiler;
import javax.tools.JavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Java blocks of the repository's README.md and of this module's README.md compile against
 * the client's classes, with javac (javax.tools). A block with a class is compiled as it is; a
 * fragment (a builder, options) as the body of a method, with the client's, the contract's and
 * java.util/time/nio.file's names imported. No server is needed.
 */
class ReadmeSnippetsTest {
  private static final Pattern FENCE =
      Pattern.compile("^```java\\n(.*?)^```", Pattern.DOTALL | Pattern.MULTILINE);
  private static final Pattern CLASS = Pattern.compile("^public (?:final )?class (\\w+)", Pattern.MULTILINE);
  private static final String FRAGMENT_IMPORTS =
      "import dev.embedrank.client.*; import dev.embedrank.v1.*; import java.nio.file.*;"
          + " import java.time.*; import java.util.*;";

  @TempDir Path dir;

  private record Block(String name, String code) {}

  private static List<Block> blocks(Path readme, String label) throws IOException {
    String text = Files.readString(readme, StandardCharsets.UTF_8);
    List<Block> out = new ArrayList<>();
    Matcher m = FENCE.matcher(text);
    while (m.find()) {
      int line = (int) text.substring(0, m.start()).chars().filter(c -> c == '\n').count() + 1;
      out.add(new Block(label + "_L" + line, m.group(1)));
    }
    return out;
  }

  /** Writes each block as a source file; returns javac's errors, each named by its block. */
  private List<String> compile(List<Block> blocks) throws IOException {
    List<Path> sources = new ArrayList<>();
    for (Block b : blocks) {
      Path folder = Files.createDirectories(dir.resolve(b.name()));
      Matcher cls = CLASS.matcher(b.code());
      String name = cls.find() ? cls.group(1) : "Snippet";
      String code = name.equals("Snippet")
          ? FRAGMENT_IMPORTS + " class Snippet { void run() throws Exception {\n" + b.code() + "\n} }\n"
          : b.code();
      sources.add(Files.writeString(folder.resolve(name + ".java"), code));
    }
    JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
    assertNotNull(javac, "no system Java compiler: the tests need a JDK, not a JRE");
    // Surefire's own class path holds the client's classes and its dependencies.
    String classPath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    DiagnosticCollector<JavaFileObject> diagnostics = new DiagnosticCollector<>();
    try (StandardJavaFileManager files = javac.getStandardFileManager(diagnostics, null, StandardCharsets.UTF_8)) {
      Path out = Files.createDirectories(dir.resolve("classes-" + blocks.get(0).name()));
      List<String> options = List.of("-classpath", classPath, "-d", out.toString(), "-proc:none");
      // Each block alone: two may declare the same class (Hello).
      for (Path source : sources) {
        javac.getTask(null, files, diagnostics, options, null, files.getJavaFileObjects(source)).call();
      }
    }
    return diagnostics.getDiagnostics().stream()
        .filter(d -> d.getKind() == Diagnostic.Kind.ERROR)
        .map(d -> Path.of(d.getSource().getName()).getParent().getFileName() + " line " + d.getLineNumber()
            + ": " + d.getMessage(Locale.ROOT))
        .collect(Collectors.toList());
  }

  @Test
  void readmeJavaBlocksCompileAgainstTheClient() throws IOException {
    List<Block> root = blocks(Path.of("..", "..", "README.md"), "README");
    List<Block> module = blocks(Path.of("README.md"), "clients_java_README");
    assertFalse(root.isEmpty(), "the repository's README has no Java block");
    assertTrue(module.size() >= 3, "clients/java/README.md has " + module.size() + " Java blocks");
    List<Block> all = new ArrayList<>(root);
    all.addAll(module);
    List<String> errors = compile(all);
    assertTrue(errors.isEmpty(), "README Java blocks do not compile:\n" + String.join("\n", errors));
    assertTrue(root.get(0).code().contains("public static void main"), "the README's block is a whole program");
  }

  @Test
  void theCheckRefusesABlockThatDoesNotCompile() throws IOException {
    List<String> errors = compile(List.of(new Block("broken", "float[][] v = EmbedRankClient.noSuchMethod();")));
    assertTrue(errors.size() == 1 && errors.get(0).startsWith("broken line"), errors.toString());
  }
}
