package comir.fiji;

import ij.Prefs;
import ij.gui.GenericDialog;
import java.io.File;
import java.util.List;
import java.util.Map;

/**
 * How to register — model, method, transform type and rotation search — as one value that is
 * at once the dialog fields (and so the macro keys), the remembered preferences and the
 * argument handed to the native library whole, as JSON (the Rust {@code comir::params::RegisterParams}).
 * The choices and the defaults come from the library, so the plugin keeps no copy of them.
 */
public final class RegisterParams {
	private static final String PREF = "comir.register.";
	/** Model file, or empty: no model (mutual information on the raw images). */
	public final String model;
	public final String method, transform;
	public final boolean anyRotation;

	public RegisterParams(String model, String method, String transform, boolean anyRotation) {
		this.model = model == null ? "" : model.trim();
		this.method = method;
		this.transform = transform;
		this.anyRotation = anyRotation;
	}

	/** The library's methods, transform types and defaults: {methods, transforms, register_defaults}. */
	static Map<String, Object> choices() {
		Native.ensureLoaded();
		return Json.object(Native.choices());
	}

	@SuppressWarnings("unchecked")
	static String[] list(Map<String, Object> choices, String key) {
		return ((List<String>) choices.get(key)).toArray(new String[0]);
	}

	/** The library's defaults (no model). */
	@SuppressWarnings("unchecked")
	public static RegisterParams defaults() {
		Map<String, Object> d = (Map<String, Object>) choices().get("register_defaults");
		return new RegisterParams("", (String) d.get("method"), (String) d.get("transform"), Boolean.TRUE.equals(d.get("any_rotation")));
	}

	/** Adds the fields (model, Method, Transform, Small_rotation_only) with the remembered values. */
	static void addFields(GenericDialog gd) {
		Map<String, Object> choices = choices();
		RegisterParams d = defaults();
		gd.addFileField("Model (empty: no model, mutual information)", Prefs.get(PREF + "model", d.model), 40);
		gd.addChoice("Method", list(choices, "methods"), Prefs.get(PREF + "method", d.method));
		gd.addChoice("Transform", list(choices, "transforms"), Prefs.get(PREF + "kind", d.transform));
		// Phrased so that the default (search every rotation) is the box left off: in a macro a
		// checkbox is on only when its key is written, so dialog, macro and CLI agree.
		gd.addCheckbox("Small_rotation_only (skip the 0-360° search)", Prefs.get(PREF + "small", !d.anyRotation));
	}

	/** Reads the fields added by {@link #addFields} (in dialog order) and remembers them. */
	static RegisterParams read(GenericDialog gd) {
		RegisterParams p = new RegisterParams(gd.getNextString(), gd.getNextChoice(), gd.getNextChoice(), !gd.getNextBoolean());
		Prefs.set(PREF + "model", p.model);
		Prefs.set(PREF + "method", p.method);
		Prefs.set(PREF + "kind", p.transform);
		Prefs.set(PREF + "small", !p.anyRotation);
		return p;
	}

	/** The model file's absolute path, or null for no model. */
	String modelPath() {
		return model.isEmpty() ? null : new File(model).getAbsolutePath();
	}

	/** What the native library reads (the model travels separately, as a path). */
	String toJson() {
		return "{\"method\":" + Json.quote(method) + ",\"transform\":" + Json.quote(transform) + ",\"any_rotation\":" + anyRotation + "}";
	}
}
