# cap-drop: static, with libcap and libseccomp.
LDLIBS_cap-drop := -lseccomp -lcap
UNIT_LDLIBS += -lseccomp -lcap

# The seccomp programs compiled at build time (lib/caps/seccomp_table.cpp):
# tools/seccomp-table links everything but the table's own object, writes
# $(BUILD)/gen/caps/seccomp_table.inc, and seccomp_table.o includes it.
SECCOMP_TABLE_OBJ := $(BUILD)/lib/caps/seccomp_table.o
SECCOMP_GEN_OBJS := $(filter-out $(SECCOMP_TABLE_OBJ),\
	$(patsubst %.cpp,$(BUILD)/%.o,$(sort $(wildcard lib/*/*.cpp))))

$(BUILD)/libkago-gen.a: $(SECCOMP_GEN_OBJS)
	rm -f $@
	ar rcs $@ $^

$(BUILD)/tools/seccomp-table: $(BUILD)/tools/seccomp-table.o $(BUILD)/libkago-gen.a
	$(CXX) $(CXXFLAGS) $(LDFLAGS) -o $@ $^ -lseccomp -lcap

$(BUILD)/gen/caps/seccomp_table.inc: $(BUILD)/tools/seccomp-table
	@mkdir -p $(@D)
	$< $@

$(SECCOMP_TABLE_OBJ): $(BUILD)/gen/caps/seccomp_table.inc
$(SECCOMP_TABLE_OBJ): private CXXFLAGS += -I$(BUILD)/gen
