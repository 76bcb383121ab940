package comir.fiji;

import static org.junit.Assert.assertEquals;
import static org.junit.Assert.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.FileOutputStream;
import java.io.InputStream;
import java.lang.reflect.InvocationTargetException;
import java.net.URL;
import java.net.URLClassLoader;
import org.junit.Rule;
import org.junit.Test;
import org.junit.rules.TemporaryFolder;

/** A missing or broken native library gives a message naming what was tried; nothing crashes. */
public class NativeLoadFailureTest {
	@Rule
	public TemporaryFolder tmp = new TemporaryFolder();

	/** Runs in a fresh JVM: tries to load and prints the message. */
	public static class Probe {
		public static void main(String[] args) {
			try {
				Native.ensureLoaded();
				System.out.println("loaded");
			}
			catch (ComirException e) {
				System.out.println(e.getMessage());
				System.exit(3);
			}
		}
	}

	/**
	 * Runs in a fresh JVM: loads the plugin twice through two class loaders, as Fiji does after
	 * Help › Refresh Menus, and prints what each copy says; the first copy must keep working.
	 */
	public static class ReloadProbe {
		public static void main(String[] args) throws Exception {
			String[] entries = System.getProperty("java.class.path").split(File.pathSeparator);
			URL[] urls = new URL[entries.length];
			for (int i = 0; i < entries.length; i++) urls[i] = new File(entries[i]).toURI().toURL();
			for (int copy = 1; copy <= 2; copy++) {
				ClassLoader loader = new URLClassLoader(urls, null); // shares nothing with the other copy
				Class<?> nativeClass = Class.forName("comir.fiji.Native", true, loader);
				try {
					nativeClass.getMethod("ensureLoaded").invoke(null);
					System.out.println("copy " + copy + ": loaded, " + nativeClass.getMethod("runtimeInfo").invoke(null));
				}
				catch (InvocationTargetException e) {
					System.out.println("copy " + copy + ": " + e.getCause().getClass().getSimpleName() + ": " + e.getCause().getMessage());
				}
			}
			System.out.println("JVM alive");
		}
	}

	private String[] probe(File library) throws Exception {
		return run("-Dcomir.library=" + library.getPath(), Probe.class.getName());
	}

	private String[] run(String property, String mainClass) throws Exception {
		String java = new File(System.getProperty("java.home"), "bin/java").getPath();
		Process p = new ProcessBuilder(java, "-cp", System.getProperty("java.class.path"), property, mainClass)
			.redirectErrorStream(true).start();
		InputStream in = p.getInputStream();
		ByteArrayOutputStream out = new ByteArrayOutputStream();
		byte[] buf = new byte[4096];
		for (int n; (n = in.read(buf)) > 0;) out.write(buf, 0, n);
		return new String[] {String.valueOf(p.waitFor()), out.toString("UTF-8")};
	}

	@Test
	public void missingLibraryIsReportedWithItsPath() throws Exception {
		File missing = new File(tmp.getRoot(), "lib/linux64/libcomir.so");
		String[] r = probe(missing);
		assertEquals(r[1], "3", r[0]);
		assertTrue(r[1], r[1].contains("could not be loaded") && r[1].contains(missing.getPath()) && r[1].contains("no such file"));
	}

	@Test
	public void aFileThatIsNotALibraryIsReported() throws Exception {
		File bogus = tmp.newFile("libcomir.so");
		FileOutputStream out = new FileOutputStream(bogus);
		out.write("not a shared library".getBytes("UTF-8"));
		out.close();
		String[] r = probe(bogus);
		assertEquals(r[1], "3", r[0]);
		assertTrue(r[1], r[1].contains("could not be loaded") && r[1].contains(bogus.getPath()));
	}

	@Test
	public void aSecondCopyOfThePluginSaysRestartAndTheFirstKeepsWorking() throws Exception {
		String[] r = run("-Djava.library.path=" + System.getProperty("java.library.path"), ReloadProbe.class.getName());
		assertEquals(r[1], "0", r[0]);
		assertTrue(r[1], r[1].contains("copy 1: loaded, comir "));
		assertTrue(r[1], r[1].contains("copy 2: ComirException") && r[1].contains("please restart Fiji"));
		assertTrue(r[1], r[1].contains("JVM alive"));
	}
}
