// GUI check (run by scripts/gui-check.sh under Xvfb): the plugin's menu commands exist, macros
// run Apply Transform and Register Multimodal Images, the result windows appear; screenshots.
// Argument: "ihc.png|transform.json|outDir|hematoxylin.tif|dab-moved.tif|model"
args = split(getArgument(), "|");
outDir = args[2];
List.setCommands;
apply = List.get("Apply Transform...");
register = List.get("Register Multimodal Images...");

// 1. Apply Transform
open(args[0]);
setLocation(10, 130);
run("Apply Transform...", "transform=[" + args[1] + "] width=0 height=0");
applied = getTitle();
setLocation(540, 130);
wait(1500);
run("Capture Screen");
saveAs("PNG", outDir + "/apply-transform.png");
close();
close("*");

// 2. Register Multimodal Images with the shipped model
open(args[3]);
fixed = getTitle();
setLocation(0, 120);
open(args[4]);
moving = getTitle();
setLocation(260, 120);
run("Register Multimodal Images...", "fixed=" + fixed + " moving=" + moving + " model=[" + args[5] + "] method=auto transform=rigid use_rois");
registered = getTitle();
setLocation(520, 120);
selectWindow("CoMIR Registrations");
setLocation(0, 660);
wait(2000);
run("Capture Screen");
saveAs("PNG", outDir + "/register.png");
close();
angle = Table.get("Angle (deg)", 0, "CoMIR Registrations");
quality = Table.getString("Quality", 0, "CoMIR Registrations");

report = "apply=" + apply + "\nregister=" + register + "\napplied=" + applied + "\nregistered=" + registered + "\nangle=" + angle + "\nquality=" + quality + "\n";
File.saveString(report, outDir + "/gui-check.txt");
close("*");
run("Quit");
